package org.vfioexport.kernel.linux;

/** Prints what {@link LinuxKernel} says about this JVM; run in a child JVM by {@link LinuxKernelNativeAccessTest}. */
public final class PrintUnavailabilityCause {
    private PrintUnavailabilityCause() {}

    public static void main(String[] args) {
        System.out.println(new LinuxKernel().unavailabilityCause());
    }
}

package org.vfioexport.kernel.linux;

import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.contract.KernelContract.OpenPath;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Which kernel the VM lab booted and which path {@link LinuxKernel} took to a device. {@code src/test/vm/run}
 * passes {@code -Dvfioexport.vm.kernel=debian} (Debian's kernel: no IOMMUFD, so the group path) or {@code lab}
 * (the lab-built kernel with IOMMUFD and VFIO_DEVICE_CDEV, where LinuxKernel must take the cdev path).
 */
final class VmLabKernel {
    static final String PROPERTY = "vfioexport.vm.kernel";

    private VmLabKernel() {}

    /** {@code debian}, {@code lab}, or null when the tests were not started by the VM lab's run script. */
    static String booted() {
        return System.getProperty(PROPERTY);
    }

    /** The path the booted kernel must give, or null when it is not known. */
    static OpenPath expectedPath() {
        String k = booted();
        if (k == null) return null;
        return switch (k) {
            case "lab" -> OpenPath.CDEV;
            case "debian" -> OpenPath.GROUP;
            default -> throw new IllegalArgumentException("-D" + PROPERTY + "=" + k + ": expected lab or debian");
        };
    }

    /** The path a device opened through: the cdev nodes live under {@code /dev/vfio/devices}. */
    static OpenPath pathOf(VfioDevice d) {
        return ((LinuxVfioDevice) d).openedThrough().contains("/vfio/devices/") ? OpenPath.CDEV : OpenPath.GROUP;
    }

    /** Opens {@code id} once to see which path the backend takes. */
    static OpenPath pathOf(LinuxKernel kernel, String id) throws KernelException {
        try (VfioDevice d = kernel.open(id)) {
            return pathOf(d);
        }
    }

    /** {@link #pathOf(LinuxKernel, String)}, failing when the booted kernel should have given the other path. */
    static OpenPath checkedPath(LinuxKernel kernel, String id) throws KernelException {
        OpenPath got = pathOf(kernel, id);
        OpenPath want = expectedPath();
        if (want != null) {
            assertEquals(want, got, "the " + booted() + " kernel (-D" + PROPERTY + "): the path to " + id);
        }
        return got;
    }
}

package org.vfioexport.kernel;

/** {@code VFIO_DEVICE_GET_INFO}: flags, region and irq counts. */
public record DeviceInfo(int flags, int numRegions, int numIrqs) {
    public static final int FLAG_RESET = 1, FLAG_PCI = 2, FLAG_CAPS = 0x80;

    public boolean resetSupported() {
        return (flags & FLAG_RESET) != 0;
    }
}

package org.vfioexport.kernel;

import org.vfioexport.ffm.uapi.Vfio;

/** {@code VFIO_DEVICE_GET_INFO}: flags, region and irq counts. */
public record DeviceInfo(int flags, int numRegions, int numIrqs) {
    // vfio_device_info.flags (short names for the values defined in ffm.uapi.Vfio)
    public static final int FLAG_RESET = Vfio.VFIO_DEVICE_FLAGS_RESET, FLAG_PCI = Vfio.VFIO_DEVICE_FLAGS_PCI,
            FLAG_CAPS = Vfio.VFIO_DEVICE_FLAGS_CAPS;

    public boolean resetSupported() {
        return (flags & FLAG_RESET) != 0;
    }
}

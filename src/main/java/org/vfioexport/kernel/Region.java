package org.vfioexport.kernel;

import org.vfioexport.ffm.uapi.Vfio;

/**
 * One region as {@code VFIO_DEVICE_GET_REGION_INFO} reports it, plus what sysfs/config space adds
 * (kind and prefetchable). An unimplemented BAR reports size 0 and kind {@link RegionKind#ABSENT}.
 *
 * @param address where the BAR (or ROM) sits in the bus address space ({@code pci_resource_start}: the first
 *                column of sysfs {@code resource}), an I/O port number for an I/O BAR; 0 for a region that is not
 *                a BAR or is not assigned. The kernel checks a dma-buf range against it: start + offset (+ length)
 *                wrapping 64 bits is EOVERFLOW.
 */
public record Region(int index, String name, long size, int flags, long offset, RegionKind kind, boolean prefetchable,
                     long address) {
    // vfio_region_info.flags (short names for the values defined in ffm.uapi.Vfio)
    public static final int FLAG_READ = Vfio.VFIO_REGION_INFO_FLAG_READ, FLAG_WRITE = Vfio.VFIO_REGION_INFO_FLAG_WRITE,
            FLAG_MMAP = Vfio.VFIO_REGION_INFO_FLAG_MMAP, FLAG_CAPS = Vfio.VFIO_REGION_INFO_FLAG_CAPS;
    // vfio-pci region indexes
    public static final int BAR0 = Vfio.VFIO_PCI_BAR0_REGION_INDEX, BAR5 = Vfio.VFIO_PCI_BAR5_REGION_INDEX,
            ROM = Vfio.VFIO_PCI_ROM_REGION_INDEX, CONFIG = Vfio.VFIO_PCI_CONFIG_REGION_INDEX,
            VGA = Vfio.VFIO_PCI_VGA_REGION_INDEX, NUM_REGIONS = Vfio.VFIO_PCI_NUM_REGIONS;

    public boolean mmap() {
        return (flags & FLAG_MMAP) != 0;
    }

    public static String standardName(int index) {
        return switch (index) {
            case 0, 1, 2, 3, 4, 5 -> "BAR" + index;
            case ROM -> "ROM";
            case CONFIG -> "CONFIG";
            case VGA -> "VGA";
            default -> "REGION" + index;
        };
    }
}

package org.vfioexport.kernel;

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
    // vfio_region_info.flags
    public static final int FLAG_READ = 1, FLAG_WRITE = 2, FLAG_MMAP = 4, FLAG_CAPS = 8;
    // vfio-pci region indexes
    public static final int BAR0 = 0, BAR5 = 5, ROM = 6, CONFIG = 7, VGA = 8, NUM_REGIONS = 9;

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

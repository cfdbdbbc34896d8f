package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.RegionKind;

/**
 * One configured BAR of a simulated device.
 *
 * @param address the BAR's bus address ({@code pci_resource_start}), or {@link #UNPLACED} until
 *                {@link BarPlacement} assigns one as firmware would. Never {@code UNPLACED} in a running kernel.
 */
public record SimRegionSpec(int index, RegionKind kind, long size, boolean prefetchable, long address) {
    /** No address given: -1 is never a valid one (a BAR is aligned to its size). */
    public static final long UNPLACED = -1;

    /** A BAR the firmware-like placement will put somewhere. */
    public SimRegionSpec(int index, RegionKind kind, long size, boolean prefetchable) {
        this(index, kind, size, prefetchable, UNPLACED);
    }

    public boolean placed() {
        return address != UNPLACED;
    }

    public SimRegionSpec at(long address) {
        return new SimRegionSpec(index, kind, size, prefetchable, address);
    }

    /** The first address past the BAR, unsigned. */
    long end() {
        return address + size;
    }
}

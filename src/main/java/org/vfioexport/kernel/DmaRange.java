package org.vfioexport.kernel;

/**
 * {@code struct vfio_region_dma_range}: offset from the BAR start and length, both unsigned 64-bit values held
 * in Java longs (compare with {@link Long#compareUnsigned}, print with {@link Long#toUnsignedString}).
 */
public record DmaRange(long offset, long length) {
    @Override
    public String toString() {
        return "0x" + Long.toHexString(offset) + "+0x" + Long.toHexString(length);
    }
}

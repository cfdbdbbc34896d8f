package org.vfioexport.kernel;

import java.util.List;

/**
 * The arguments of {@code VFIO_DEVICE_FEATURE} with {@code VFIO_DEVICE_FEATURE_DMA_BUF}, field for field.
 *
 * <p>{@code nrRanges} and {@code argsz} are normally derived from {@code ranges}; they are separate so that a
 * caller (the contract tests) can send exactly the malformed buffers the kernel must reject, with both backends.
 *
 * @param featureFlags {@code vfio_device_feature.flags}: the feature index and GET/SET/PROBE bits
 * @param regionIndex  BAR number
 * @param openFlags    open(2)-style flags for the new file (the kernel keeps O_ACCMODE|O_NONBLOCK, uses O_CLOEXEC)
 * @param flags        {@code vfio_device_feature_dma_buf.flags}, which must be 0
 * @param nrRanges     the count written into the header
 * @param argsz        {@code vfio_device_feature.argsz}
 */
public record DmaBufRequest(int featureFlags, int regionIndex, int openFlags, int flags, int nrRanges, int argsz,
                            List<DmaRange> ranges) {
    public static final int FEATURE_DMA_BUF = 11;
    public static final int FEATURE_MASK = 0xFFFF, GET = 0x10000, SET = 0x20000, PROBE = 0x40000;
    public static final int HEADER_SIZE = 8, BODY_SIZE = 16, RANGE_SIZE = 16;
    public static final int O_RDWR = 2, O_CLOEXEC = 02000000;

    public DmaBufRequest {
        ranges = List.copyOf(ranges);
    }

    /** A well-formed GET request for {@code ranges} of {@code region}. */
    public static DmaBufRequest get(int region, List<DmaRange> ranges, int openFlags) {
        return new DmaBufRequest(GET | FEATURE_DMA_BUF, region, openFlags, 0, ranges.size(),
                HEADER_SIZE + BODY_SIZE + RANGE_SIZE * ranges.size(), ranges);
    }

    public static DmaBufRequest get(int region, long offset, long length) {
        return get(region, List.of(new DmaRange(offset, length)), O_RDWR | O_CLOEXEC);
    }

    /** A PROBE of the feature: the kernel answers 0 when it supports it. */
    public static DmaBufRequest probe() {
        return new DmaBufRequest(PROBE | GET | FEATURE_DMA_BUF, 0, 0, 0, 0, HEADER_SIZE, List.of());
    }

    public DmaBufRequest withFeatureFlags(int f) {
        return new DmaBufRequest(f, regionIndex, openFlags, flags, nrRanges, argsz, ranges);
    }

    public DmaBufRequest withFlags(int f) {
        return new DmaBufRequest(featureFlags, regionIndex, openFlags, f, nrRanges, argsz, ranges);
    }

    public DmaBufRequest withNrRanges(int n) {
        return new DmaBufRequest(featureFlags, regionIndex, openFlags, flags, n, argsz, ranges);
    }

    public DmaBufRequest withArgsz(int a) {
        return new DmaBufRequest(featureFlags, regionIndex, openFlags, flags, nrRanges, a, ranges);
    }

    public boolean isProbe() {
        return (featureFlags & PROBE) != 0;
    }

    /** The dma-buf size: the sum of the lengths (valid once the kernel accepted them). */
    public long size() {
        long s = 0;
        for (DmaRange r : ranges) s += r.length();
        return s;
    }
}

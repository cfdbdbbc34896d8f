package org.vfioexport.kernel;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.uapi.Vfio;

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
    // Short names for the uAPI's values, which are defined (and checked against the headers) in ffm.uapi / ffm.posix.
    public static final int FEATURE_DMA_BUF = Vfio.VFIO_DEVICE_FEATURE_DMA_BUF;
    public static final int FEATURE_MASK = Vfio.VFIO_DEVICE_FEATURE_MASK, GET = Vfio.VFIO_DEVICE_FEATURE_GET,
            SET = Vfio.VFIO_DEVICE_FEATURE_SET, PROBE = Vfio.VFIO_DEVICE_FEATURE_PROBE;
    /** sizeof the {@code vfio_device_feature} header, the {@code vfio_device_feature_dma_buf} body and one range. */
    public static final int HEADER_SIZE = (int) Vfio.vfio_device_feature.byteSize(),
            BODY_SIZE = (int) Vfio.vfio_device_feature_dma_buf.byteSize(),
            RANGE_SIZE = (int) Vfio.vfio_region_dma_range.byteSize();
    public static final int O_RDWR = Posix.O_RDWR, O_CLOEXEC = Posix.O_CLOEXEC;
    /** What a client gets when it names no open flags: read-write, close-on-exec. */
    public static final int DEFAULT_OPEN_FLAGS = O_RDWR | O_CLOEXEC;

    public DmaBufRequest {
        ranges = List.copyOf(ranges);
    }

    /** A well-formed GET request for {@code ranges} of {@code region}. */
    public static DmaBufRequest get(int region, List<DmaRange> ranges, int openFlags) {
        return new DmaBufRequest(GET | FEATURE_DMA_BUF, region, openFlags, 0, ranges.size(),
                HEADER_SIZE + BODY_SIZE + RANGE_SIZE * ranges.size(), ranges);
    }

    public static DmaBufRequest get(int region, long offset, long length) {
        return get(region, List.of(new DmaRange(offset, length)), DEFAULT_OPEN_FLAGS);
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

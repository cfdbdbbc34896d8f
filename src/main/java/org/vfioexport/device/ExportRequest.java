package org.vfioexport.device;

import org.vfioexport.kernel.DmaRange;

import java.util.List;

/**
 * A well-typed export request (shape already checked by the API): the kernel judges the values.
 *
 * @param owner     the session that will own the export (released with it)
 * @param region    BAR index, u32
 * @param ranges    the ranges as sent, possibly empty (the kernel answers EINVAL)
 * @param openFlags open(2)-style flags for the dma-buf
 */
public record ExportRequest(String owner, long region, List<DmaRange> ranges, int openFlags) {
    public ExportRequest {
        ranges = List.copyOf(ranges);
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.RegionKind;

import java.util.List;

/**
 * Turns the kernel's refusal of an export into a sentence about the request, e.g.
 * {@code "range 0x0+0x3000 exceeds region 2 (size 0x2000)"}. The code and data stay exactly the kernel's
 * (-32000 with errno, name, op); only the message is explained, from the device's region table.
 */
public final class ExportErrors {
    private static final long PAGE = 4096;

    private ExportErrors() {}

    public static RpcException explain(KernelException k, long region, List<DmaRange> ranges, List<Region> regions) {
        String why = reason(k.errno(), region, ranges, regions);
        String message = why == null ? k.getMessage() : why + " (" + k.op() + ": " + k.errnoName() + ")";
        return new RpcException(ErrorCode.KERNEL_REFUSED, message,
                new JsonObject().put("errno", k.errno()).put("name", k.errnoName()).put("op", k.op()));
    }

    private static String reason(int errno, long region, List<DmaRange> ranges, List<Region> regions) {
        if (Errno.ENODEV.is(errno) && region >= 6) return "region " + Long.toUnsignedString(region) + " is not a BAR (BARs are 0-5)";
        if (Errno.EINVAL.is(errno) && ranges.isEmpty()) return "no ranges given: an export needs at least one range";
        if (Errno.EOVERFLOW.is(errno)) {
            for (DmaRange r : ranges) {
                if (Long.compareUnsigned(r.offset() + r.length(), r.offset()) < 0) return "range " + r + " overflows 64 bits";
            }
            return "a range end overflows 64 bits";
        }
        if (!Errno.EINVAL.is(errno)) return null;
        for (DmaRange r : ranges) {
            if (r.length() == 0) return "range " + r + " is empty";
            if (r.offset() % PAGE != 0 || r.length() % PAGE != 0) return "range " + r + " is not page-aligned (4 KiB)";
        }
        Region reg = regions == null ? null : regions.stream().filter(x -> x.index() == region).findFirst().orElse(null);
        if (reg != null && (reg.kind() != RegionKind.MMIO || reg.size() == 0)) {
            return "region " + region + " is not an MMIO BAR (kind " + reg.kind().wire + ", size " + Wire.hex(reg.size()) + ")";
        }
        if (reg != null) {
            for (DmaRange r : ranges) {
                long end = r.offset() + r.length();
                if (Long.compareUnsigned(end, reg.size()) > 0 || Long.compareUnsigned(end, r.offset()) < 0) {
                    return "range " + r + " exceeds region " + region + " (size " + Wire.hex(reg.size()) + ")";
                }
            }
        }
        return null;
    }
}

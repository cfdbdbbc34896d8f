package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.device.DeviceSnapshot;
import org.vfioexport.device.Export;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.Region;

import java.math.BigInteger;

/** The protocol's DEVICE and EXPORT objects, and the JSON-RPC envelopes. */
public final class Wire {
    private Wire() {}

    /** A u64 held in a long, as the JSON integer it stands for (values above 2^63-1 included). */
    public static Object u64(long v) {
        return v >= 0 ? (Object) v : new BigInteger(Long.toUnsignedString(v));
    }

    public static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    public static JsonObject device(DeviceSnapshot d) {
        JsonArray regions = new JsonArray();
        for (Region r : d.regions()) {
            regions.add(new JsonObject().put("index", r.index()).put("name", r.name()).put("size", u64(r.size()))
                    .put("kind", r.kind().wire).put("mmap", r.mmap()).put("prefetchable", r.prefetchable())
                    .put("address", u64(r.address())));
        }
        JsonObject o = new JsonObject().put("device", d.device()).put("name", d.name()).put("backend", d.backend())
                .put("state", d.state().wire).put("memory_enabled", d.memoryEnabled()).put("seq", d.seq())
                .put("exports", d.exports()).put("reset_supported", d.resetSupported())
                .put("dmabuf_supported", d.dmabufUnsupported() == null).put("regions", regions);
        if (d.dmabufUnsupported() != null) o.put("dmabuf_unsupported_reason", d.dmabufUnsupported());
        return o;
    }

    public static JsonObject export(Export e) {
        JsonArray ranges = new JsonArray();
        for (DmaRange r : e.ranges()) ranges.add(new JsonObject().put("offset", u64(r.offset())).put("length", u64(r.length())));
        return new JsonObject().put("export_id", e.id()).put("device", e.device()).put("region", e.region())
                .put("ranges", ranges).put("size", u64(e.size())).put("state", e.state().wire)
                .put("created_seq", e.createdSeq());
    }

    public static JsonObject result(Object id, JsonObject result) {
        return new JsonObject().put("jsonrpc", "2.0").put("id", id).put("result", result);
    }

    public static JsonObject error(Object id, RpcException e) {
        return new JsonObject().put("jsonrpc", "2.0").put("id", id).put("error", e.toJson());
    }

    public static JsonObject notification(String method, JsonObject params) {
        return new JsonObject().put("jsonrpc", "2.0").put("method", method).put("params", params);
    }
}

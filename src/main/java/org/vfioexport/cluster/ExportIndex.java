package org.vfioexport.cluster;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.events.Event;

import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * The exports alive on this node, as the fleet sees them ({@code fleet.exports}): kept from this node's own event
 * stream, so it needs no trip to the devices or the connections, and never holds an fd. Updated on the devices'
 * loops, read by the node's request handler.
 */
final class ExportIndex {
    private record Entry(String device, String state, long createdSeq) {}

    private final Map<String, Entry> exports = new ConcurrentSkipListMap<>();

    void apply(Event e) {
        if (e.exportId() == null) return;
        switch (e.type()) {
            case EXPORT_CREATED -> exports.put(e.exportId(), new Entry(e.device(), e.state(), e.seq()));
            case EXPORT_REVOKED -> exports.computeIfPresent(e.exportId(), (k, v) -> new Entry(v.device, "revoked", v.createdSeq));
            case EXPORT_RESTORED -> exports.computeIfPresent(e.exportId(), (k, v) -> new Entry(v.device, "live", v.createdSeq));
            case EXPORT_RELEASED -> exports.remove(e.exportId());
            default -> { }
        }
    }

    JsonArray toJson() {
        JsonArray out = new JsonArray();
        exports.forEach((id, e) -> out.add(new JsonObject().put("export_id", id).put("device", e.device)
                .put("state", e.state).put("created_seq", e.createdSeq)));
        return out;
    }
}

package org.vfioexport.cluster;

import io.vertx.core.json.JsonObject;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The receiving side's check of the per-device seq: the last seq seen of each device of each node incarnation
 * (node id). The first event of a device sets the start; after that an event at or below the last is a duplicate
 * (dropped), and one beyond the next is preceded by an {@code events.lost} naming exactly what is missing. Not
 * thread-safe: the node's fleet context owns it.
 */
final class DeviceSeqs {
    private final Map<String, Map<String, Long>> last = new HashMap<>();
    private long lost;

    /** What {@code event} of node {@code node} (incarnation {@code id}) adds to the stream: nothing, it, or a gap and it. */
    List<FleetEvent> accept(String id, String node, JsonObject event) {
        String device = event.getString("device");
        long seq = event.getLong("seq");
        Map<String, Long> seqs = last.computeIfAbsent(id, k -> new HashMap<>());
        Long before = seqs.get(device);
        if (before != null && seq <= before) return List.of();
        seqs.put(device, seq);
        String key = id + "/" + device;
        JsonObject params = new JsonObject().put("node", node);
        params.mergeIn(event);
        FleetEvent e = FleetEvent.device(key, node, params);
        if (before == null || seq == before + 1) return List.of(e);
        lost += seq - before - 1;
        return List.of(FleetEvent.lost(key, node, device, before + 1, seq - 1), e);
    }

    /** The incarnation {@code id} left: its devices start afresh if it were ever seen again. */
    void forget(String id) {
        last.remove(id);
    }

    /** Events found missing on arrival so far. */
    long lost() {
        return lost;
    }
}

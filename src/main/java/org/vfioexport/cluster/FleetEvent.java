package org.vfioexport.cluster;

import io.vertx.core.json.JsonObject;

import java.nio.charset.StandardCharsets;
import java.time.Instant;

/**
 * One line of the fleet stream, encoded once for every subscriber: a device event of some node ({@code seq} > 0,
 * {@code key} naming the node's incarnation and the device), an {@code events.lost} for such a device, or a
 * membership event ({@code node.joined}, {@code node.left}; no key).
 */
record FleetEvent(String key, String node, String device, long seq, long fromSeq, long toSeq, byte[] line) {

    static FleetEvent device(String key, String node, JsonObject event) {
        return new FleetEvent(key, node, event.getString("device"), event.getLong("seq"), 0, 0, encode(event));
    }

    static FleetEvent lost(String key, String node, String device, long from, long to) {
        return new FleetEvent(key, node, device, 0, from, to, encode(lostJson(node, device, from, to)));
    }

    static FleetEvent membership(String type, String node, io.vertx.core.json.JsonArray devices) {
        return new FleetEvent(null, node, null, 0, 0, 0, encode(new JsonObject().put("type", type).put("node", node)
                .put("devices", devices).put("time", Instant.now().toString())));
    }

    boolean isLost() {
        return key != null && seq == 0;
    }

    static JsonObject lostJson(String node, String device, long from, long to) {
        return new JsonObject().put("node", node).put("device", device).put("type", "events.lost")
                .put("from_seq", from).put("to_seq", to).put("time", Instant.now().toString());
    }

    static byte[] encode(JsonObject params) {
        String json = new JsonObject().put("jsonrpc", "2.0").put("method", "event").put("params", params).encode();
        return (json + "\n").getBytes(StandardCharsets.UTF_8);
    }
}

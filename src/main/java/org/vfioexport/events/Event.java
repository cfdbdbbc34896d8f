package org.vfioexport.events;

import io.vertx.core.json.JsonObject;

import java.time.Instant;

/**
 * One event of one device. {@code seq} is per device, from 1, gap-free. {@code state} is set on
 * {@code export.created} (live/revoked) and {@code device.state} (the new device state); {@code fromSeq}/{@code toSeq}
 * only on {@code events.lost}.
 */
public record Event(long seq, String device, EventType type, String exportId, Cause cause, Instant time,
                    String state, long fromSeq, long toSeq) {

    public static Event lost(String device, long fromSeq, long toSeq) {
        return new Event(0, device, EventType.EVENTS_LOST, null, null, Instant.now(), null, fromSeq, toSeq);
    }

    /** The protocol's EVENT object. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        if (type != EventType.EVENTS_LOST) o.put("seq", seq);
        o.put("device", device).put("type", type.wire);
        if (exportId != null) o.put("export_id", exportId);
        if (cause != null) o.put("cause", cause.wire);
        if (state != null) o.put("state", state);
        if (type == EventType.EVENTS_LOST) o.put("from_seq", fromSeq).put("to_seq", toSeq);
        o.put("time", time.toString());
        return o;
    }
}

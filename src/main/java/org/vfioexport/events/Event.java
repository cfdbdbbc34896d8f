package org.vfioexport.events;

import io.vertx.core.json.JsonObject;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Objects;

/**
 * One event of one device. {@code seq} is per device, from 1, gap-free. {@code state} is set on
 * {@code export.created} (live/revoked) and {@code device.state} (the new device state); {@code fromSeq}/{@code toSeq}
 * only on {@code events.lost}.
 *
 * <p>Immutable. Its wire form is encoded once, on first use, and shared by every subscriber: a reset of a device
 * with 10,000 exports followed by 100 subscribers is 2 million deliveries of 20,000 distinct lines.
 */
public final class Event {
    private final long seq;
    private final String device;
    private final EventType type;
    private final String exportId;
    private final Cause cause;
    private final Instant time;
    private final String state;
    private final long fromSeq;
    private final long toSeq;
    private volatile byte[] notificationLine;   // racy single-check: every thread computes the same bytes

    public Event(long seq, String device, EventType type, String exportId, Cause cause, Instant time, String state,
                 long fromSeq, long toSeq) {
        this.seq = seq;
        this.device = device;
        this.type = type;
        this.exportId = exportId;
        this.cause = cause;
        this.time = time;
        this.state = state;
        this.fromSeq = fromSeq;
        this.toSeq = toSeq;
    }

    public static Event lost(String device, long fromSeq, long toSeq) {
        return new Event(0, device, EventType.EVENTS_LOST, null, null, Instant.now(), null, fromSeq, toSeq);
    }

    public long seq() {
        return seq;
    }

    public String device() {
        return device;
    }

    public EventType type() {
        return type;
    }

    public String exportId() {
        return exportId;
    }

    public Cause cause() {
        return cause;
    }

    public Instant time() {
        return time;
    }

    public String state() {
        return state;
    }

    public long fromSeq() {
        return fromSeq;
    }

    public long toSeq() {
        return toSeq;
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

    /**
     * The JSON-RPC notification carrying this event, {@code {"jsonrpc":"2.0","method":"event","params":EVENT}},
     * as one NDJSON line (UTF-8, ending in a newline). Encoded once; callers must not modify the array.
     */
    public byte[] notificationLine() {
        byte[] l = notificationLine;
        if (l == null) {
            String json = JsonEncoding.encode(new JsonObject().put("jsonrpc", "2.0").put("method", "event").put("params", toJson()));
            l = (json + "\n").getBytes(StandardCharsets.UTF_8);
            notificationLine = l;
        }
        return l;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Event e && seq == e.seq && fromSeq == e.fromSeq && toSeq == e.toSeq
                && device.equals(e.device) && type == e.type && Objects.equals(exportId, e.exportId)
                && cause == e.cause && time.equals(e.time) && Objects.equals(state, e.state);
    }

    @Override
    public int hashCode() {
        return Objects.hash(seq, device, type, exportId, cause, state);
    }

    @Override
    public String toString() {
        return toJson().encode();
    }
}

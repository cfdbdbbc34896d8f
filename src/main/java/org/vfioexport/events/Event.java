package org.vfioexport.events;

import io.vertx.core.json.JsonObject;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Objects;

/**
 * One event of one device. {@code seq} is per device, from 1, gap-free. {@code state} is set on
 * {@code export.created} (live/revoked) and {@code device.state} (the new device state); {@code fromSeq}/{@code toSeq}
 * only on {@code events.lost}. {@code owner} is the connection that created the export of an {@code export.*} event
 * (not on the wire: {@link Scope} filters by it).
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
    private final String owner;
    /** The revocation handshake's fields, or null: set on {@code export.revoking} and a watched export's revoke. */
    private final Handshake handshake;
    private volatile byte[] notificationLine;   // racy single-check: every thread computes the same bytes

    /**
     * What the revocation handshake adds to an event: {@code deadline_ms} on {@code export.revoking}; {@code acked}
     * and {@code timed_out} (how many of the export's watchers answered, and how many the deadline passed over) on
     * the {@code export.revoked} of a watched export. Unused fields are -1.
     */
    public record Handshake(long deadlineMs, int acked, int timedOut) {
        public static Handshake revoking(long deadlineMs) {
            return new Handshake(deadlineMs, -1, -1);
        }

        public static Handshake outcome(int acked, int timedOut) {
            return new Handshake(-1, acked, timedOut);
        }
    }

    public Event(long seq, String device, EventType type, String exportId, Cause cause, Instant time, String state,
                 long fromSeq, long toSeq) {
        this(seq, device, type, exportId, null, cause, time, state, fromSeq, toSeq, null);
    }

    public Event(long seq, String device, EventType type, String exportId, Cause cause, Instant time, String state,
                 long fromSeq, long toSeq, Handshake handshake) {
        this(seq, device, type, exportId, null, cause, time, state, fromSeq, toSeq, handshake);
    }

    public Event(long seq, String device, EventType type, String exportId, String owner, Cause cause, Instant time,
                 String state, long fromSeq, long toSeq) {
        this(seq, device, type, exportId, owner, cause, time, state, fromSeq, toSeq, null);
    }

    public Event(long seq, String device, EventType type, String exportId, String owner, Cause cause, Instant time,
                 String state, long fromSeq, long toSeq, Handshake handshake) {
        this.owner = owner;
        this.handshake = handshake;
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

    /** The connection that created the event's export; null on device events and when unknown (a rebuilt event). */
    public String owner() {
        return owner;
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

    /** The handshake's fields, or null (an event the handshake has no part in). */
    public Handshake handshake() {
        return handshake;
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
        if (handshake != null) {
            if (handshake.deadlineMs() >= 0) o.put("deadline_ms", handshake.deadlineMs());
            if (handshake.acked() >= 0) o.put("acked", handshake.acked()).put("timed_out", handshake.timedOut());
        }
        o.put("time", time.toString());
        return o;
    }

    /** An EVENT object as {@link #toJson()} writes it (a client's or a test's view of the stream). */
    public static Event fromJson(JsonObject o) {
        EventType type = null;
        for (EventType t : EventType.values()) if (t.wire.equals(o.getString("type"))) type = t;
        if (type == null) throw new IllegalArgumentException("unknown event type: " + o.encode());
        Cause cause = null;
        String c = o.getString("cause");
        if (c != null) {
            for (Cause x : Cause.values()) if (x.wire.equals(c)) cause = x;
            if (cause == null) throw new IllegalArgumentException("unknown cause: " + o.encode());
        }
        Handshake h = null;
        if (o.containsKey("deadline_ms")) h = Handshake.revoking(o.getLong("deadline_ms"));
        else if (o.containsKey("acked")) h = Handshake.outcome(o.getInteger("acked"), o.getInteger("timed_out"));
        return new Event(o.getLong("seq", 0L), o.getString("device"), type, o.getString("export_id"), cause,
                Instant.parse(o.getString("time")), o.getString("state"), o.getLong("from_seq", 0L),
                o.getLong("to_seq", 0L), h);
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
                && cause == e.cause && time.equals(e.time) && Objects.equals(state, e.state)
                && Objects.equals(handshake, e.handshake);
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

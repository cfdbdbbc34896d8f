package org.vfioexport.events;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Checks a stream of events against the protocol's guarantees, device by device, in the order a subscriber saw
 * them: gap-free sequence numbers (or an explicit {@code events.lost}), the per-export grammar
 * {@code created (revoked restored)* [revoked] released} with nothing after {@code released}, no export live
 * while its device resets or has memory decoding off, and the linearization of releases: every export live at a
 * {@code device.state resetting} or {@code memory-disabled} is revoked or released in the events right after it,
 * before any other event (a restore, the state that ends the reset, a creation), and every export is released
 * before {@code device.state closed}, the device's last event. The revocation handshake: {@code export.revoking}
 * only for a live export, never inside a reset or memory-off window; the events of one handshake are consecutive
 * and followed at once by the {@code resetting} or {@code memory-disabled} that opens the window; every export
 * announced there is revoked (its {@code export.revoked} carrying {@code acked} and {@code timed_out}, at least
 * one watcher counted) or released in that window; and only an announced export's revoke carries them. Used by
 * tests and the load-test suite.
 *
 *
 * <p>A scoped subscription ({@link Scope}) sees a subset of each device's events: every device event and every
 * event of the exports in its scope, in seq order. Its stream is checked by {@link #scoped()}: the same rules
 * applied to the exports it sees, with seq strictly increasing instead of gap-free (the skipped numbers are other
 * exports' events), and an export may first appear after its creation (a list scope names exports that exist).
 * That the skipped numbers are exactly the out-of-scope events is a property of the view
 * against the full stream: {@link #view(List, Scope)} computes the expected view.
 */
public final class EventInvariants {
    private final Map<String, DeviceTrack> devices = new HashMap<>();
    private final List<String> violations = new ArrayList<>();
    private final boolean scoped;

    /** A checker for a subscription to every event of its devices (the gap-free stream). */
    public EventInvariants() {
        this(false);
    }

    private EventInvariants(boolean scoped) {
        this.scoped = scoped;
    }

    /** A checker for a scoped subscription's stream: seq numbers may skip, each rule holds for what it sees. */
    public static EventInvariants scoped() {
        return new EventInvariants(true);
    }

    /**
     * What a subscription of {@code scope} sees of {@code full} (a gap-free stream from seq 1, as an unscoped
     * subscriber received it): its device events and the events of the exports in scope, in order. An
     * {@code events.lost} of the full stream is kept.
     */
    public static List<Event> view(List<Event> full, Scope scope) {
        List<Event> out = new ArrayList<>();
        for (Event e : full) if (scope.covers(e)) out.add(e);
        return out;
    }

    private static final class DeviceTrack {
        long lastSeq;
        String state = "ready";
        boolean resetting;
        boolean closed;
        boolean gap;                   // an events.lost was seen: exports created in it may show up unannounced
        final Map<String, String> exports = new HashMap<>();   // id -> live | revoked | released
        final Set<String> live = new HashSet<>();
        /**
         * The window's opening event (a resetting or memory-disabled state), until the first event after it that
         * is neither a revoke nor a release; null outside a window.
         */
        Event window;
        /** Exports live at the window's opening that the events since have neither revoked nor released. */
        final Set<String> unsettled = new HashSet<>();
        /** True between a handshake's first {@code export.revoking} and the state that opens its window. */
        boolean handshaking;
        /** Exports announced by the last handshake, until its window closes. */
        final Set<String> announced = new HashSet<>();
    }

    /** Feeds one event; returns false if it broke a rule (the reason is kept). */
    public boolean accept(Event e) {
        int before = violations.size();
        DeviceTrack d = devices.computeIfAbsent(e.device(), k -> new DeviceTrack());
        if (e.type() == EventType.EVENTS_LOST) {
            if (scoped ? e.fromSeq() <= d.lastSeq : e.fromSeq() != d.lastSeq + 1) {
                fail(e, "lost range starts at " + e.fromSeq() + ", expected " + (scoped ? "after " + d.lastSeq : d.lastSeq + 1));
            }
            d.lastSeq = e.toSeq();
            // after a gap the grammar of exports we may have missed events of cannot be judged
            d.exports.replaceAll((k, v) -> "unknown");
            d.gap = true;
            d.live.clear();
            d.window = null;          // the revokes of an open window may be in the gap
            d.unsettled.clear();
            d.handshaking = false;
            d.announced.clear();
            return violations.size() == before;
        }
        if (scoped ? e.seq() <= d.lastSeq : e.seq() != d.lastSeq + 1) fail(e, "seq " + e.seq() + " after " + d.lastSeq);
        d.lastSeq = e.seq();
        if (d.closed) fail(e, "event after device.state closed");
        if (d.window != null && e.type() != EventType.EXPORT_REVOKED && e.type() != EventType.EXPORT_RELEASED) {
            // the revoke pass is over: each export live at the window's opening must have been revoked, or
            // released if its release had begun (the release takes effect no later than the failed try-get)
            if (!d.unsettled.isEmpty()) {
                fail(e, "exports live at seq " + d.window.seq() + " device.state " + d.window.state()
                        + " were neither revoked nor released before this event: " + new TreeSet<>(d.unsettled));
            }
            d.window = null;
            d.unsettled.clear();
            d.announced.clear();
        }
        boolean opensWindow = e.type() == EventType.DEVICE_STATE
                && ("resetting".equals(e.state()) || "memory-disabled".equals(e.state()));
        if (d.handshaking && e.type() != EventType.EXPORT_REVOKING && !opensWindow) {
            fail(e, "inside a revocation handshake (after export.revoking of " + new TreeSet<>(d.announced)
                    + "): only export.revoking and the state that opens the revoke pass may follow");
        }
        if (opensWindow) d.handshaking = false;
        String id = e.exportId();
        String cur = id == null ? null : d.exports.get(id);
        // created in a gap, or (a list scope names existing exports) before the scoped subscription began
        if (cur == null && (d.gap || scoped) && id != null && e.type() != EventType.EXPORT_CREATED) cur = "unknown";
        switch (e.type()) {
            case EXPORT_CREATED -> {
                if (cur != null) fail(e, "created twice");
                if (d.resetting) fail(e, "export created during a reset");
                if (!d.state.equals("ready") && "live".equals(e.state())) fail(e, "created live while " + d.state);
                d.exports.put(id, e.state());
                if ("live".equals(e.state())) d.live.add(id);
            }
            case EXPORT_REVOKING -> {
                if (cur == null) fail(e, "revoking before created");
                else if (!cur.equals("live") && !cur.equals("unknown")) fail(e, "revoking while " + cur);
                if (d.resetting || d.state.equals("memory-disabled")) fail(e, "revoking while " + d.state);
                if (d.window != null) fail(e, "revoking inside a revoke pass");
                if (e.handshake() == null || e.handshake().deadlineMs() < 0) fail(e, "revoking without deadline_ms");
                if (!d.announced.add(id)) fail(e, "revoking twice in one handshake");
                d.handshaking = true;
            }
            case EXPORT_REVOKED -> {
                if (cur == null) fail(e, "revoked before created");
                else if (!cur.equals("live") && !cur.equals("unknown")) fail(e, "revoked while " + cur);
                boolean fields = e.handshake() != null && e.handshake().acked() >= 0;
                if (d.announced.contains(id)) {
                    if (!fields) fail(e, "revoked after export.revoking without acked and timed_out");
                    else if (e.handshake().acked() + e.handshake().timedOut() < 1) fail(e, "revoked after export.revoking counting no watcher");
                } else if (fields) {
                    fail(e, "acked and timed_out on a revoke that no export.revoking announced");
                }
                d.announced.remove(id);
                d.exports.put(id, "revoked");
                d.live.remove(id);
                d.unsettled.remove(id);
            }
            case EXPORT_RESTORED -> {
                if (cur == null) fail(e, "restored before created");
                else if (!cur.equals("revoked") && !cur.equals("unknown")) fail(e, "restored while " + cur);
                if (d.state.equals("memory-disabled") && e.cause() != Cause.MEMORY_ENABLE) {
                    fail(e, "restored while memory is disabled");
                }
                d.exports.put(id, "live");
                d.live.add(id);
            }
            case EXPORT_RELEASED -> {
                d.announced.remove(id);
                if (cur == null) fail(e, "released before created");
                else if (cur.equals("released")) fail(e, "released twice");
                d.exports.put(id, "released");
                d.live.remove(id);
                d.unsettled.remove(id);
            }
            case DEVICE_STATE -> {
                d.state = e.state();
                d.resetting = "resetting".equals(e.state());
                if (d.resetting || "memory-disabled".equals(e.state())) {
                    d.window = e;
                    d.unsettled.addAll(d.live);
                }
                if ("closed".equals(e.state())) {
                    d.closed = true;
                    List<String> left = new ArrayList<>();
                    d.exports.forEach((k, v) -> { if (v.equals("live") || v.equals("revoked")) left.add(k); });
                    if (!left.isEmpty()) fail(e, "exports not released before the device closed: " + new TreeSet<>(left));
                }
            }
            case EVENTS_LOST -> throw new IllegalStateException("handled above");
        }
        return violations.size() == before;
    }

    private void fail(Event e, String why) {
        violations.add(e.device() + " seq " + e.seq() + " " + e.type().wire
                + (e.exportId() == null ? "" : " " + e.exportId()) + ": " + why);
    }

    /**
     * The violations so far. A window still open at the end of the stream is not judged: the stream may end inside
     * the device's revoke pass.
     */
    public List<String> violations() {
        return List.copyOf(violations);
    }

    /** Exports of {@code device} whose last event was not {@code released}. */
    public Set<String> unreleased(String device) {
        DeviceTrack d = devices.get(device);
        Set<String> out = new HashSet<>();
        if (d != null) d.exports.forEach((k, v) -> { if (!v.equals("released")) out.add(k); });
        return out;
    }

    public long lastSeq(String device) {
        DeviceTrack d = devices.get(device);
        return d == null ? 0 : d.lastSeq;
    }
}

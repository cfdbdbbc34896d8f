package org.vfioexport.events;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks a stream of events against the protocol's guarantees, device by device, in the order a subscriber saw
 * them: gap-free sequence numbers (or an explicit {@code events.lost}), the per-export grammar
 * {@code created (revoked restored)* [revoked] released} with nothing after {@code released}, and no export live
 * while its device resets or has memory decoding off. Used by tests, the load-test suite and {@code watch --check}.
 */
public final class EventInvariants {
    private final Map<String, DeviceTrack> devices = new HashMap<>();
    private final List<String> violations = new ArrayList<>();

    private static final class DeviceTrack {
        long lastSeq;
        String state = "ready";
        boolean windowOpen;            // between resetting/memory-disabled and the first non-revoke event after it
        boolean resetting;
        final Map<String, String> exports = new HashMap<>();   // id -> live | revoked | released
        final Set<String> live = new HashSet<>();
        /** Live when a reset or memory-off window closed: only legal if their release had begun (guarantee 5). */
        final Set<String> mustBeReleasing = new HashSet<>();
    }

    /** Feeds one event; returns false if it broke a rule (the reason is kept). */
    public boolean accept(Event e) {
        int before = violations.size();
        DeviceTrack d = devices.computeIfAbsent(e.device(), k -> new DeviceTrack());
        if (e.type() == EventType.EVENTS_LOST) {
            if (e.fromSeq() != d.lastSeq + 1) fail(e, "lost range starts at " + e.fromSeq() + ", expected " + (d.lastSeq + 1));
            d.lastSeq = e.toSeq();
            // after a gap the grammar of exports we may have missed events of cannot be judged
            d.exports.replaceAll((k, v) -> "unknown");
            d.live.clear();
            return violations.size() == before;
        }
        if (e.seq() != d.lastSeq + 1) fail(e, "seq " + e.seq() + " after " + d.lastSeq);
        d.lastSeq = e.seq();
        if (d.windowOpen && e.type() != EventType.EXPORT_REVOKED && e.type() != EventType.EXPORT_RELEASED) {
            // anything still live here was skipped by the try-get: its release must have begun, so the next and
            // only event it may have is its release
            d.mustBeReleasing.addAll(d.live);
            d.windowOpen = false;
        }
        String id = e.exportId();
        if (id != null && d.mustBeReleasing.contains(id) && e.type() != EventType.EXPORT_RELEASED) {
            fail(e, "export was live while " + d.state + " and is not being released");
        }
        String cur = id == null ? null : d.exports.get(id);
        switch (e.type()) {
            case EXPORT_CREATED -> {
                if (cur != null) fail(e, "created twice");
                if (d.resetting) fail(e, "export created during a reset");
                if (!d.state.equals("ready") && "live".equals(e.state())) fail(e, "created live while " + d.state);
                d.exports.put(id, e.state());
                if ("live".equals(e.state())) d.live.add(id);
            }
            case EXPORT_REVOKED -> {
                if (cur == null) fail(e, "revoked before created");
                else if (!cur.equals("live") && !cur.equals("unknown")) fail(e, "revoked while " + cur);
                d.exports.put(id, "revoked");
                d.live.remove(id);
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
                if (cur == null) fail(e, "released before created");
                else if (cur.equals("released")) fail(e, "released twice");
                d.exports.put(id, "released");
                d.live.remove(id);
                d.mustBeReleasing.remove(id);
            }
            case DEVICE_STATE -> {
                d.state = e.state();
                d.resetting = "resetting".equals(e.state());
                if (d.resetting || "memory-disabled".equals(e.state())) d.windowOpen = true;
            }
            case EVENTS_LOST -> throw new IllegalStateException("handled above");
        }
        return violations.size() == before;
    }

    private void fail(Event e, String why) {
        violations.add(e.device() + " seq " + e.seq() + " " + e.type().wire
                + (e.exportId() == null ? "" : " " + e.exportId()) + ": " + why);
    }

    /** The violations so far, plus exports that were live through a reset or memory-off and never released. */
    public List<String> violations() {
        List<String> out = new ArrayList<>(violations);
        devices.forEach((dev, d) -> {
            for (String id : d.mustBeReleasing) out.add(dev + " " + id + ": live while the device reset or had memory off, never released");
        });
        return out;
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

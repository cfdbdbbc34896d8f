package org.vfioexport.api;

import io.vertx.core.json.JsonObject;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The configuration's {@code handshake} section: how long a reset or memory-off waits for the watchers of its
 * exports to answer {@code export.revoking} (a default, per device overrides, and a maximum that a call's
 * {@code quiesce_ms} may not pass), and how many exports one connection may watch.
 */
public record HandshakeSettings(long deadlineMs, long maxDeadlineMs, Map<String, Long> deviceDeadlineMs,
                                int maxWatchesPerClient) {
    public static final long DEFAULT_DEADLINE_MS = 5_000;
    public static final long DEFAULT_MAX_DEADLINE_MS = 60_000;
    /** No configuration may let one operation hold its device longer than this waiting for answers. */
    public static final long CEILING_MS = 600_000;
    public static final int DEFAULT_MAX_WATCHES_PER_CLIENT = 1024;

    public static final HandshakeSettings DEFAULTS = new HandshakeSettings(DEFAULT_DEADLINE_MS,
            DEFAULT_MAX_DEADLINE_MS, Map.of(), DEFAULT_MAX_WATCHES_PER_CLIENT);

    /** The section (null: the defaults); a bad value throws IllegalArgumentException naming its key. */
    public static HandshakeSettings fromConfig(JsonObject h) {
        if (h == null) return DEFAULTS;
        long max = millis(h, "max_deadline_ms", DEFAULT_MAX_DEADLINE_MS, 1, CEILING_MS);
        long dflt = millis(h, "deadline_ms", Math.min(DEFAULT_DEADLINE_MS, max), 0, max);
        Map<String, Long> perDevice = new LinkedHashMap<>();
        JsonObject d = h.getJsonObject("device_deadline_ms", new JsonObject());
        for (String id : d.fieldNames()) perDevice.put(id, millis(d, id, dflt, 0, max));
        Integer watches = h.getInteger("max_watches_per_client", DEFAULT_MAX_WATCHES_PER_CLIENT);
        if (watches == null || watches < 1) {
            throw new IllegalArgumentException("handshake.max_watches_per_client must be a positive integer, got " + watches);
        }
        return new HandshakeSettings(dflt, max, Map.copyOf(perDevice), watches);
    }

    private static long millis(JsonObject o, String key, long dflt, long min, long max) {
        Long v = o.getLong(key, dflt);
        if (v == null || v < min || v > max) {
            throw new IllegalArgumentException("handshake." + key + " must be " + min + ".." + max + " ms"
                    + (max < CEILING_MS ? " (handshake.max_deadline_ms is " + max + ")" : "") + ", got " + v);
        }
        return v;
    }

    /** The deadline of a reset or memory-off of {@code device} that names none. */
    public long deadlineFor(String device) {
        return deviceDeadlineMs.getOrDefault(device, deadlineMs);
    }

    /** The section as the daemon runs it, for {@code --check-config}. */
    public JsonObject toJson() {
        JsonObject per = new JsonObject();
        deviceDeadlineMs.forEach(per::put);
        return new JsonObject().put("deadline_ms", deadlineMs).put("max_deadline_ms", maxDeadlineMs)
                .put("device_deadline_ms", per).put("max_watches_per_client", maxWatchesPerClient);
    }
}

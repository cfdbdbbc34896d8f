package org.vfioexport.audit;

import io.vertx.core.json.JsonObject;

import java.nio.file.Path;

/**
 * The {@code audit} object of the configuration, with its defaults. The journal lives by default beside the
 * socket, named after it ({@code /run/vfio-export/vfio-export.sock} gives
 * {@code /run/vfio-export/vfio-export.audit.jsonl}), so that two daemons on two sockets of one directory keep two
 * journals.
 *
 * @param maxBytes  the size past which the current file is rotated (a record is never split over two files)
 * @param keep      rotated files kept ({@code .1} newest to {@code .keep} oldest); older ones are deleted
 * @param fsyncMs   the group-commit cadence: written records are fsynced at most this long after they were
 *                  written; 0 fsyncs every batch before its requests are answered
 */
public record AuditSettings(boolean enabled, Path path, long maxBytes, int keep, long fsyncMs) {
    public static final long DEFAULT_MAX_BYTES = 16L << 20;
    public static final long MIN_MAX_BYTES = 4096;
    public static final int DEFAULT_KEEP = 4;
    public static final int MAX_KEEP = 1000;
    public static final long DEFAULT_FSYNC_MS = 200;
    public static final long MAX_FSYNC_MS = 60_000;

    /** The settings of {@code audit} (null: every default) for a daemon on {@code socket}; a bad value throws. */
    public static AuditSettings fromConfig(JsonObject audit, Path socket) {
        JsonObject a = audit == null ? new JsonObject() : audit;
        boolean enabled = a.getBoolean("enabled", true);
        String path = a.getString("path");
        long maxBytes = a.getLong("max_bytes", DEFAULT_MAX_BYTES);
        if (maxBytes < MIN_MAX_BYTES) {
            throw new IllegalArgumentException("audit.max_bytes must be at least " + MIN_MAX_BYTES + ", got " + maxBytes);
        }
        long keep = a.getLong("keep", (long) DEFAULT_KEEP);
        if (keep < 1 || keep > MAX_KEEP) {
            throw new IllegalArgumentException("audit.keep must be 1 to " + MAX_KEEP + ", got " + keep);
        }
        long fsyncMs = a.getLong("fsync_ms", DEFAULT_FSYNC_MS);
        if (fsyncMs < 0 || fsyncMs > MAX_FSYNC_MS) {
            throw new IllegalArgumentException("audit.fsync_ms must be 0 to " + MAX_FSYNC_MS + ", got " + fsyncMs);
        }
        if (path != null && (path.isEmpty() || path.endsWith("/"))) {
            throw new IllegalArgumentException("audit.path must name a file, got '" + path + "'");
        }
        return new AuditSettings(enabled, path == null ? defaultPath(socket) : Path.of(path), maxBytes, (int) keep, fsyncMs);
    }

    /** {@code <dir>/<socket name without .sock>.audit.jsonl}. */
    static Path defaultPath(Path socket) {
        String name = socket.getFileName().toString();
        if (name.endsWith(".sock") && name.length() > ".sock".length()) name = name.substring(0, name.length() - 5);
        return socket.resolveSibling(name + ".audit.jsonl");
    }
}

package org.vfioexport.audit;

import io.vertx.core.json.JsonObject;

/**
 * The start of a journal record: its event and who did it. The journal adds {@code ts} and {@code seq} in front
 * when it writes the line; callers add the event's own fields (docs/audit.md lists them, event by event).
 */
public final class AuditRecord {
    private AuditRecord() {}

    public static final String DAEMON_START = "daemon.start";
    public static final String DAEMON_STOP = "daemon.stop";
    public static final String DAEMON_RECOVERED = "daemon.recovered";
    public static final String JOURNAL_ROTATED = "journal.rotated";
    public static final String JOURNAL_LOST = "journal.lost";
    public static final String EXPORT_CREATE = "export.create";
    public static final String EXPORT_RELEASE = "export.release";
    public static final String DEVICE_RESET = "device.reset";
    public static final String DEVICE_SET_MEMORY = "device.set_memory";
    public static final String CONNECTION_REFUSED = "connection.refused";

    public static JsonObject of(String event, Who who) {
        return who.putInto(new JsonObject().put("event", event));
    }

    /** The outcome of a request: {@code ok}, and on failure {@code error} {code, message}. */
    public static JsonObject outcome(JsonObject record, Integer errorCode, String errorMessage) {
        record.put("ok", errorCode == null);
        if (errorCode != null) record.put("error", new JsonObject().put("code", errorCode).put("message", errorMessage));
        return record;
    }
}

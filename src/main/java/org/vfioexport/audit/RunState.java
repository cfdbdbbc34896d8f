package org.vfioexport.audit;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The state of the daemon run a sequence of records describes: which run is open (a {@code daemon.start} or a
 * {@code journal.rotated} checkpoint without a {@code daemon.stop} after it) and which of its exports are live
 * (a successful {@code export.create} without a successful {@code export.release}). The writer keeps one for
 * the checkpoint it puts at the top of each new file; at start, one replayed over the journal tells whether the
 * previous run died, and with which exports live.
 */
final class RunState {
    private boolean open;
    private long runPid;
    private String runStart;
    private String lastTs;
    private long lastSeq;
    private final Map<String, JsonObject> live = new LinkedHashMap<>();

    void apply(JsonObject r) {
        if (r.getValue("seq") instanceof Number n) lastSeq = Math.max(lastSeq, n.longValue());
        if (r.getValue("ts") instanceof String ts) lastTs = ts;
        String event = r.getValue("event") instanceof String e ? e : "";
        switch (event) {
            case AuditRecord.DAEMON_START -> {
                begin(r);
                runStart = r.getString("ts");
            }
            case AuditRecord.JOURNAL_ROTATED -> {
                begin(r);
                runStart = r.getValue("run_start") instanceof String s ? s : null;
                if (r.getValue("exports") instanceof JsonArray a) {
                    for (Object o : a) if (o instanceof JsonObject x && x.getValue("export_id") instanceof String id) live.put(id, x);
                }
            }
            case AuditRecord.DAEMON_STOP -> {
                open = false;
                live.clear();
            }
            case AuditRecord.EXPORT_CREATE -> {
                if (Boolean.TRUE.equals(r.getValue("ok")) && r.getValue("export_id") instanceof String id) live.put(id, summary(r));
            }
            case AuditRecord.EXPORT_RELEASE -> {
                if (Boolean.TRUE.equals(r.getValue("ok")) && r.getValue("export_id") instanceof String id) live.remove(id);
            }
            default -> { }
        }
    }

    private void begin(JsonObject r) {
        open = true;
        runPid = r.getValue("pid") instanceof Number n ? n.longValue() : 0;
        live.clear();
    }

    /** What a live export's entry says: what it is, who holds it, since when. */
    private static JsonObject summary(JsonObject create) {
        JsonObject s = new JsonObject().put("export_id", create.getValue("export_id")).put("device", create.getValue("device"))
                .put("region", create.getValue("region")).put("size", create.getValue("size"));
        for (String k : new String[] {"pid", "uid", "gid", "exe"}) if (create.containsKey(k)) s.put(k, create.getValue(k));
        return s.put("created", create.getValue("ts"));
    }

    /** True while a run is open: its start (or a checkpoint of it) was seen, its stop not. */
    boolean open() {
        return open;
    }

    long runPid() {
        return runPid;
    }

    String runStart() {
        return runStart;
    }

    String lastTs() {
        return lastTs;
    }

    long lastSeq() {
        return lastSeq;
    }

    List<JsonObject> liveExports() {
        return new ArrayList<>(live.values());
    }

    /** The checkpoint that opens a new file: this run and its live exports. */
    JsonObject checkpoint(Who daemon) {
        JsonObject r = AuditRecord.of(AuditRecord.JOURNAL_ROTATED, daemon);
        if (runStart != null) r.put("run_start", runStart);
        return r.put("exports", new JsonArray(liveExports()));
    }
}

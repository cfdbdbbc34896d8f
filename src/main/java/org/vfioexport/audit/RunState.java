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
    /** Live exports by id: the summary, or (replayed from lines) the create record's line, parsed only if still live. */
    private final Map<String, Object> live = new LinkedHashMap<>();

    /**
     * As {@link #apply} on the parsed line, but the many {@code export.create} and {@code export.release} lines of
     * a long run are read without parsing them: the writer's format puts {@code ts}, {@code seq} and
     * {@code event} first, and a string value cannot hold an unescaped quote, so the first {@code "event":"} and
     * {@code "export_id":"} are the record's own. A line that does not look complete is parsed (and, torn, skipped).
     */
    void applyLine(String line) {
        String event = JournalReader.stringField(line, "event");
        boolean export = AuditRecord.EXPORT_CREATE.equals(event) || AuditRecord.EXPORT_RELEASE.equals(event);
        long seq = JournalReader.seqOf(line);
        if (!export || seq < 0 || !line.endsWith("}")) {
            JsonObject r = JournalReader.parse(line);
            if (r != null) apply(r);
            return;
        }
        lastSeq = Math.max(lastSeq, seq);
        lastTs = JournalReader.tsOf(line);
        String id = JournalReader.stringField(line, "export_id");
        if (id == null || !line.contains("\"ok\":true")) return;
        if (AuditRecord.EXPORT_CREATE.equals(event)) live.put(id, line);
        else live.remove(id);
    }

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
        List<JsonObject> out = new ArrayList<>(live.size());
        for (Object o : live.values()) {
            if (o instanceof JsonObject j) out.add(j);
            else if (JournalReader.parse((String) o) instanceof JsonObject r) out.add(summary(r));
        }
        return out;
    }

    /** The checkpoint that opens a new file: this run and its live exports. */
    JsonObject checkpoint(Who daemon) {
        JsonObject r = AuditRecord.of(AuditRecord.JOURNAL_ROTATED, daemon);
        if (runStart != null) r.put("run_start", runStart);
        return r.put("exports", new JsonArray(liveExports()));
    }
}

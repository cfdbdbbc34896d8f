package org.vfioexport.audit;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the journal says about the run before this one, read at start: the last {@code seq} (numbering goes on
 * from it) and, when that run never wrote {@code daemon.stop}, that it died and which of its exports were live
 * then (their fds went with its process, but their clients may not know why).
 *
 * <p>Only the tail is replayed: from the newest file holding an anchor (a {@code daemon.start}, or the
 * {@code journal.rotated} checkpoint at the top of every rotated-into file), from its last anchor on. So the
 * report stays exact however long the run was, and start-up reads one file, not the whole journal.
 */
public record PreviousRun(long lastSeq, boolean died, long pid, String started, String lastSeen, List<JsonObject> liveExports) {
    /** Exports named on the stderr line; {@code daemon.recovered} lists them all. */
    static final int NAMED_ON_STDERR = 20;

    static PreviousRun read(JournalFiles files) throws IOException {
        List<Path> oldestFirst = files.existingOldestFirst();
        List<List<String>> newerFirst = new ArrayList<>(); // files after the anchor file, newest first
        List<String> tail = List.of();
        for (int i = oldestFirst.size() - 1; i >= 0; i--) {
            List<String> lines = new ArrayList<>();
            JournalReader.forEachLine(oldestFirst.get(i), lines::add);
            int anchor = lastAnchor(lines);
            if (anchor >= 0) {
                tail = lines.subList(anchor, lines.size()); // earlier lines there belong to earlier runs
                break;
            }
            newerFirst.add(lines);
        }
        RunState state = new RunState();
        for (String l : tail) state.applyLine(l);
        for (List<String> f : newerFirst.reversed()) for (String l : f) state.applyLine(l);
        return new PreviousRun(state.lastSeq(), state.open(), state.runPid(), state.runStart(), state.lastTs(),
                state.liveExports());
    }

    private static int lastAnchor(List<String> lines) {
        for (int i = lines.size() - 1; i >= 0; i--) {
            String event = JournalReader.stringField(lines.get(i), "event");
            if ((AuditRecord.DAEMON_START.equals(event) || AuditRecord.JOURNAL_ROTATED.equals(event))
                    && JournalReader.parse(lines.get(i)) != null) {
                return i;
            }
        }
        return -1;
    }

    /**
     * The stderr line: {@code the previous run (pid N) stopped without a clean shutdown; K exports were live:
     * 0000:01:00.0/3 (uid 1000, pid 4242, /usr/bin/spdk_tgt), ...}.
     */
    public String describe() {
        StringBuilder sb = new StringBuilder("the previous run (pid ").append(pid).append(") stopped without a clean shutdown");
        if (lastSeen != null) sb.append(" (its last record: ").append(lastSeen).append(')');
        int n = liveExports.size();
        if (n == 0) return sb.append("; no exports were live").toString();
        sb.append("; ").append(n).append(n == 1 ? " export was live: " : " exports were live: ");
        for (int i = 0; i < Math.min(n, NAMED_ON_STDERR); i++) {
            JsonObject e = liveExports.get(i);
            if (i > 0) sb.append(", ");
            sb.append(e.getValue("export_id")).append(" (").append(Who.describe(e)).append(')');
        }
        if (n > NAMED_ON_STDERR) sb.append(", and ").append(n - NAMED_ON_STDERR).append(" more (audit.query event daemon.recovered lists them all)");
        return sb.toString();
    }

    /** The {@code daemon.recovered} record the new run writes. */
    JsonObject record(Who daemon) {
        JsonObject r = AuditRecord.of(AuditRecord.DAEMON_RECOVERED, daemon).put("previous_pid", pid);
        if (started != null) r.put("previous_start", started);
        if (lastSeen != null) r.put("previous_last_record", lastSeen);
        return r.put("exports", new JsonArray(new ArrayList<>(liveExports)));
    }
}

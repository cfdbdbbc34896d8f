package org.vfioexport.audit;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * A search of the journal: records with {@code seq} above {@code afterSeq}, {@code ts} within
 * [{@code since}, {@code until}], of {@code event}, about {@code device}, by {@code uid}; at most {@code limit},
 * oldest first. Null means "any". {@code onlyUid}, when set, is what the asker may see: records of that uid, and
 * {@code daemon.recovered} records narrowed to that uid's exports.
 *
 * <p>A {@code daemon.recovered} record is about many exports: it matches {@code device} or {@code uid} when one
 * of its exports does.
 */
public record AuditQuery(String device, Long uid, String event, Instant since, Instant until, long afterSeq,
                         int limit, Long onlyUid) {
    public static final int DEFAULT_LIMIT = 100;
    public static final int MAX_LIMIT = 1000;
    private static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
            .withZone(ZoneOffset.UTC);

    public AuditQuery {
        if (limit < 1 || limit > MAX_LIMIT) throw new IllegalArgumentException("limit must be 1 to " + MAX_LIMIT);
    }

    /** The records as {@code {"records":[...],"truncated":bool}} (and {@code next_after_seq} when truncated). */
    JsonObject run(JournalFiles files) throws IOException {
        // ts has a fixed width in UTC: comparing the strings compares the instants, at millisecond precision
        String from = since == null ? null : TS.format(since.truncatedTo(ChronoUnit.MILLIS));
        String to = until == null ? null : TS.format(until.truncatedTo(ChronoUnit.MILLIS));
        JsonArray out = new JsonArray();
        long[] lastSeq = {afterSeq};
        boolean[] truncated = {false};
        List<FileChannel> open = JournalReader.openAllOldestFirst(files);
        LineFilter quick = new LineFilter(from, to);
        try {
            for (FileChannel ch : open) {
                boolean more = JournalReader.forEachLine(ch, line -> {
                    if (!quick.mayMatch(line, lastSeq[0])) return true;
                    JsonObject r = JournalReader.parse(line);
                    if (r == null) return true;
                    long seq = r.getValue("seq") instanceof Number n ? n.longValue() : -1;
                    if (seq <= lastSeq[0]) return true; // before the page, or met twice across a rotation
                    String ts = r.getValue("ts") instanceof String s ? s : "";
                    if (from != null && ts.compareTo(from) < 0) return true;
                    if (to != null && ts.compareTo(to) > 0) return true;
                    JsonObject shown = match(r);
                    if (shown == null) return true;
                    if (out.size() == limit) {
                        truncated[0] = true;
                        return false;
                    }
                    out.add(shown);
                    lastSeq[0] = seq;
                    return true;
                });
                if (!more) break;
            }
        } finally {
            for (FileChannel ch : open) ch.close();
        }
        JsonObject result = new JsonObject().put("records", out).put("truncated", truncated[0]);
        if (truncated[0]) result.put("next_after_seq", lastSeq[0]);
        return result;
    }

    /**
     * A cheap look at a line before it is parsed, on what the writer puts first ({@code {"ts":"...","seq":N,})
     * and on strings any matching line must contain: most lines of a large journal are skipped unparsed. Only a
     * necessary condition; {@link #match} decides.
     */
    private final class LineFilter {
        private final String from;
        private final String to;
        private final String eventText;
        private final String deviceText;
        private final String[] uidTexts;

        LineFilter(String from, String to) {
            this.from = from;
            this.to = to;
            this.eventText = event != null && plain(event) ? "\"event\":\"" + event + "\"" : null;
            this.deviceText = device != null && plain(device) ? "\"" + device + "\"" : null;
            Long u = uid != null ? uid : onlyUid;
            this.uidTexts = u == null ? null : new String[] {"\"uid\":" + u + ",", "\"uid\":" + u + "}"};
        }

        boolean mayMatch(String line, long afterSeq) {
            String ts = JournalReader.tsOf(line);
            if (ts != null) {
                if (from != null && ts.compareTo(from) < 0) return false;
                if (to != null && ts.compareTo(to) > 0) return false;
                long seq = JournalReader.seqOf(line);
                if (seq >= 0 && seq <= afterSeq) return false;
            }
            if (eventText != null && !line.contains(eventText)) return false;
            if (deviceText != null && !line.contains(deviceText)) return false;
            return uidTexts == null || line.contains(uidTexts[0]) || line.contains(uidTexts[1]);
        }

        /** Written as is inside a JSON string: nothing to escape. */
        private static boolean plain(String s) {
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c < 0x20 || c == '"' || c == '\\' || c > 0x7e) return false;
            }
            return true;
        }
    }

    /** {@code r} as this query shows it, or null when it does not match. */
    JsonObject match(JsonObject r) {
        if (event != null && !event.equals(r.getValue("event"))) return null;
        if (AuditRecord.DAEMON_RECOVERED.equals(r.getValue("event")) && r.getValue("exports") instanceof JsonArray all) {
            return matchRecovered(r, all);
        }
        if (device != null && !device.equals(r.getValue("device"))) return null;
        if (uid != null && !sameUid(uid, r)) return null;
        if (onlyUid != null && !sameUid(onlyUid, r)) return null;
        return r;
    }

    private JsonObject matchRecovered(JsonObject r, JsonArray all) {
        JsonArray visible = new JsonArray();
        boolean matches = device == null && uid == null;
        for (Object o : all) {
            if (!(o instanceof JsonObject e)) continue;
            if (onlyUid != null && !sameUid(onlyUid, e)) continue;
            visible.add(e);
            if ((device == null || device.equals(e.getValue("device"))) && (uid == null || sameUid(uid, e))) matches = true;
        }
        if (!matches || (onlyUid != null && visible.isEmpty())) return null;
        return onlyUid == null ? r : r.copy().put("exports", visible);
    }

    private static boolean sameUid(long uid, JsonObject r) {
        return r.getValue("uid") instanceof Number n && n.longValue() == uid;
    }
}

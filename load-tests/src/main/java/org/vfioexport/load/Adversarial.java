package org.vfioexport.load;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.api.ErrorCode;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The adversarial scenarios ({@code adv-*}): clients that try to break the root service. Each starts its own daemon
 * ({@link AdversarialRun}) with the per-uid limits it exercises set explicitly, attacks it, and ends with the common
 * checks: a fresh {@code server.info} answered within 2 s, fds back at baseline, no export left, bounded RSS.
 * The expected daemon behaviour is the per-uid limits contract documented in docs/protocol.md.
 */
final class Adversarial {
    static final String DEV = Scenarios.DEV;
    static final String QUOTA = "max_exports_per_uid", CONNS = "max_connections_per_uid", SUBS = "max_subscriptions_per_uid",
            FDS_IN_FLIGHT = "max_fds_in_flight_per_uid", REQS_IN_FLIGHT = "max_requests_in_flight_per_client",
            OUTPUT = "max_output_bytes_per_client", BATCH = "max_batch", PER_CLIENT = "max_exports_per_client";
    static final int MAX_LINE = 65536;
    static final String CREATE = "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"export.create\",\"params\":{\"device\":\"" + DEV
            + "\",\"region\":0,\"offset\":0,\"length\":4096}}\n";

    final Path home;
    final Path work;
    final Size size;

    Adversarial(Path home, Path work, Size size) {
        this.home = home;
        this.work = work;
        this.size = size;
    }

    /** How big each scenario is: bounded for the CI smoke (all of them in about two minutes on 2 cores), or full. */
    record Size(boolean full, int fuzz, int slowConns, int slowMaxChunk, long slowMillis, int connLimit, int connExtra,
                int unreadRequests, int unreadFdLimit, long unreadMillis, int killRounds, int stalledSubs, long stalledPairs,
                int quotaExports, int quotaConns, int quotaSubs, long deniedFloodMillis, int bigBatchLines, int maxBatchLines,
                long floodMillis, int termStalled, int termNormal) {
        static Size smoke() {
            return new Size(false, 0, 32, 64, 5_000, 64, 64, 6_000, 256, 5_000, 24, 8, 400, 300, 4, 16, 3_000, 120, 2_000,
                    6_000, 4, 4);
        }

        static Size fullRun() {
            return new Size(true, 5_000, 256, 16, 60_000, 256, 1_024, 30_000, 1_024, 20_000, 400, 64, 2_000, 5_000, 16, 64,
                    10_000, 1_000, 20_000, 20_000, 32, 16);
        }
    }

    static String request(long id, String method, String params) {
        return "{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"" + method + "\"" + (params == null ? "" : ",\"params\":" + params) + "}\n";
    }

    static JsonObject object(String line) {
        if (line == null) return null;
        try {
            return Json.decodeValue(line) instanceof JsonObject o ? o : null;
        } catch (DecodeException e) {
            return null;
        }
    }

    /** The error code of a response line, or 0 when it is a result (or not an object). */
    static int code(JsonObject o) {
        if (o == null || !(o.getValue("error") instanceof JsonObject e)) return 0;
        return e.getInteger("code", 0);
    }

    static String limit(JsonObject o) {
        if (o == null || !(o.getValue("error") instanceof JsonObject e) || !(e.getValue("data") instanceof JsonObject d)) return null;
        return d.getValue("limit") instanceof String s ? s : null;
    }

    /** data.name of an error (the errno name of a kernel refusal), or null. */
    static String errnoName(JsonObject o) {
        if (o == null || !(o.getValue("error") instanceof JsonObject e) || !(e.getValue("data") instanceof JsonObject d)) return null;
        return d.getValue("name") instanceof String s ? s : null;
    }

    static String cut(String s, int n) {
        return s == null ? "null" : s.length() > n ? s.substring(0, n) + "…(" + s.length() + " chars)" : s;
    }

    /**
     * A connection greeted with hello within 10 s (else an IOException saying what came instead). The 2 s bound
     * on answers is checked after each scenario, on a quiet daemon; during an attack a greeting may take longer.
     */
    static RawConn greeted(Path socket) throws IOException {
        return greeted(socket, 10_000);
    }

    static RawConn greeted(Path socket, long ms) throws IOException {
        RawConn c = RawConn.connect(socket);
        String hello = c.readLine(ms);
        if (hello == null || !hello.contains("\"hello\"")) {
            c.close();
            throw new IOException("not greeted: " + (hello == null ? c.lastEnd() : cut(hello, 200)));
        }
        return c;
    }

    // ---- 1. malformed input corpus ----------------------------------------------------------------------------------

    Result malformed() throws Exception {
        Result r = new Result("adv-malformed", "malformed input corpus, one line at a time then pipelined: every request line gets exactly one JSON-RPC error with a stable code (no -32603); over-long lines get -32600 and the connection is closed");
        try (AdversarialRun run = new AdversarialRun(r, home, work, new JsonObject())) {
            run.baseline();
            List<String> methods = new ArrayList<>();
            try (VfioExportClient c = VfioExportClient.connect(run.socket())) {
                for (Object m : c.request("rpc.methods").getJsonArray("methods")) methods.add((String) m);
            }
            List<MalformedCorpus.Case> corpus = MalformedCorpus.build(methods, MAX_LINE, size.fuzz());
            TreeMap<Integer, Integer> codes = new TreeMap<>();
            Map<String, int[]> perCategory = new LinkedHashMap<>();
            int[] linesPerCase = new int[corpus.size()];
            int internal = 0, bad = 0, reconnects = 0;
            long bytes = 0;
            RawConn c = greeted(run.socket());
            for (int i = 0; i < corpus.size(); i++) {
                MalformedCorpus.Case k = corpus.get(i);
                int[] cat = perCategory.computeIfAbsent(k.category(), x -> new int[2]);
                cat[0]++;
                String probeId = "\"id\":\"probe-" + i + "\"";
                byte[] line = concat(k.line(), "\n".getBytes(StandardCharsets.UTF_8),
                        ("{\"jsonrpc\":\"2.0\"," + probeId + ",\"method\":\"server.info\"}\n").getBytes(StandardCharsets.UTF_8));
                bytes += k.line().length + 1;
                List<String> got = new ArrayList<>();
                String problem = null;
                boolean transport = false;
                try {
                    if (c.send(line, 10_000) < line.length) problem = "the daemon did not take the line within 10 s";
                    while (problem == null) {
                        String l = c.readLine(10_000);
                        if (l == null) problem = "no answer to the probe after it (" + c.lastEnd() + ")";
                        else if (l.contains(probeId)) break;
                        else got.add(l);
                    }
                    // an answer that went through a device (the line reached one) may leave after the probe's, which
                    // never does: give it a moment before judging
                    if (problem == null && k.expect() != MalformedCorpus.Expect.NONE && got.isEmpty()) {
                        String late = c.readLine(1_000);
                        if (late != null) got.add(late);
                    }
                } catch (IOException e) {
                    problem = e.getMessage();
                }
                transport = problem != null;
                linesPerCase[i] = got.size();
                for (String l : got) {
                    for (int code : codesOf(l)) {
                        codes.merge(code, 1, Integer::sum);
                        if (code == ErrorCode.INTERNAL_ERROR.code) internal++;
                    }
                }
                if (problem == null) problem = judge(k, got);
                if (problem != null) {
                    bad++;
                    if (bad <= 25) r.violation(k.category() + " / " + k.label() + ": " + problem + (got.isEmpty() ? "" : "; got " + cut(got.getFirst(), 300)));
                    if (transport) {
                        c.close();
                        c = greeted(run.socket());
                        reconnects++;
                    }
                } else {
                    cat[1]++;
                }
            }
            c.close();
            if (bad > 25) r.violation((bad - 25) + " more corpus lines answered wrongly");
            if (internal > 0) r.violation(internal + " internal errors (-32603) in answer to malformed input");
            r.metric("corpus_lines", corpus.size()).metric("corpus_bytes", bytes).metric("lines_answered_wrongly", bad)
                    .metric("internal_errors", internal).metric("reconnects", reconnects).metric("codes", codes.toString());
            StringBuilder cats = new StringBuilder();
            for (var e : perCategory.entrySet()) cats.append(cats.isEmpty() ? "" : ", ").append(e.getKey()).append(' ').append(e.getValue()[1]).append('/').append(e.getValue()[0]);
            r.metric("ok_per_category", cats.toString());

            // the same corpus pipelined on one connection: as many lines back as one at a time
            long expected = 0;
            for (int n : linesPerCase) expected += n;
            long pipelined = pipelined(run.socket(), corpus, expected, r);
            r.metric("pipelined_lines_back", pipelined).metric("pipelined_lines_expected", expected);
            if (pipelined != expected) r.violation("pipelined corpus: " + pipelined + " lines back, " + expected + " expected (as one at a time)");

            String overLong = overLong(run.socket(), r);
            r.metric("over_long", overLong);
            r.metric("sent", corpus.size() + " lines (" + perCategory.size() + " categories) one at a time with a probe after each, then pipelined; 3 line-limit cases");
            r.metric("daemon_did", (bad == 0 ? "answered every line as expected" : bad + " lines answered wrongly") + "; codes " + codes + "; " + overLong);
            run.after();
        }
        return r;
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) n += p.length;
        byte[] out = new byte[n];
        int o = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }

    /** Every error code in a response line (one for an object, one per element for a batch). */
    private static List<Integer> codesOf(String line) {
        List<Integer> out = new ArrayList<>();
        Object j;
        try {
            j = Json.decodeValue(line);
        } catch (DecodeException e) {
            return out;
        }
        if (j instanceof JsonObject o && code(o) != 0) out.add(code(o));
        if (j instanceof JsonArray a) for (Object x : a) if (x instanceof JsonObject o && code(o) != 0) out.add(code(o));
        return out;
    }

    /** Null when the lines answer the case as it requires, else what is wrong. */
    private static String judge(MalformedCorpus.Case k, List<String> got) {
        switch (k.expect()) {
            case NONE:
                return got.isEmpty() ? null : "expected no line, got " + got.size();
            case AT_MOST_ONE:
                if (got.size() > 1) return "expected at most one line, got " + got.size();
                for (String l : got) if (codesOf(l).contains(ErrorCode.INTERNAL_ERROR.code)) return "internal error";
                return null;
            default:
                if (got.size() != 1) return "expected exactly one line, got " + got.size();
        }
        Object j;
        try {
            j = Json.decodeValue(got.getFirst());
        } catch (DecodeException e) {
            return "the answer is not JSON";
        }
        List<JsonObject> answers = new ArrayList<>();
        if (j instanceof JsonObject o) answers.add(o);
        else if (j instanceof JsonArray a && !a.isEmpty()) for (Object x : a) answers.add(x instanceof JsonObject o ? o : new JsonObject());
        else return "the answer is neither an object nor a non-empty array";
        for (JsonObject o : answers) {
            int code = code(o);
            if (code == 0) return "a result instead of an error";
            if (code == ErrorCode.INTERNAL_ERROR.code) return "internal error -32603";
            if (ErrorCode.of(code) == null) return "unknown error code " + code;
            if (k.codes() != null && !k.codes().contains(code)) return "error " + code + ", expected one of " + k.codes();
        }
        return null;
    }

    /** Sends the whole corpus without waiting (a second thread) and counts the lines that come back. */
    /**
     * Sends the corpus pipelined and counts the lines back. Only answers about one device are ordered (the
     * protocol's pipelining rule), so the end probe may overtake the last answers about a device: counting goes
     * on until both the probe and {@code expected} answers are in, or nothing more comes for 10 s.
     */
    private static long pipelined(Path socket, List<MalformedCorpus.Case> corpus, long expected, Result r) throws Exception {
        try (RawConn c = greeted(socket)) {
            AtomicBoolean sendFailed = new AtomicBoolean();
            Thread sender = new Thread(() -> {
                try {
                    for (MalformedCorpus.Case k : corpus) {
                        byte[] b = concat(k.line(), new byte[] {'\n'});
                        if (c.send(b, 10_000) < b.length) throw new IOException("the daemon stopped taking lines");
                    }
                    c.send("{\"jsonrpc\":\"2.0\",\"id\":\"pipelined-end\",\"method\":\"server.info\"}\n", 10_000);
                } catch (IOException e) {
                    sendFailed.set(true);
                    r.violation("pipelined corpus: sending failed: " + e.getMessage());
                }
            }, "corpus-sender");
            sender.start();
            long n = 0;
            boolean end = false;
            while (!end || n < expected) {
                String l = c.readLine(10_000);
                if (l == null) {
                    if (!end && !sendFailed.get()) r.violation("pipelined corpus: no end probe answer (" + c.lastEnd() + ") after " + n + " lines");
                    break;
                }
                if (l.contains("\"id\":\"pipelined-end\"")) end = true;
                else n++;
            }
            sender.join(10_000);
            return n;
        }
    }

    /** The line limit: a line one byte over, an unfinished line over, and a line exactly at the limit. */
    private static String overLong(Path socket, Result r) throws Exception {
        StringBuilder out = new StringBuilder();
        String[] names = {"line of max_line_bytes+1", "unfinished line of max_line_bytes+2"};
        byte[][] lines = {("\"" + "a".repeat(MAX_LINE - 1) + "\"\n").getBytes(StandardCharsets.UTF_8),
                ("\"" + "a".repeat(MAX_LINE + 1)).getBytes(StandardCharsets.UTF_8)};
        for (int i = 0; i < 2; i++) {
            try (RawConn c = greeted(socket)) {
                long t0 = System.nanoTime();
                c.send(lines[i], 2_000);
                String l = c.readLine(2_000);
                JsonObject o = l == null ? null : object(l);
                String l2 = l == null ? null : c.readLine(2_000);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                String what = (l == null ? "nothing (" + c.lastEnd() + ")" : "error " + code(o)) + (l2 == null ? " then " + c.lastEnd() : " then another line") + " in " + ms + " ms";
                out.append(names[i]).append(": ").append(what).append("; ");
                if (code(o) != -32600) r.violation(names[i] + ": expected -32600, got " + cut(l, 200));
                if (l2 != null || c.lastEnd() == RawConn.End.TIMEOUT) r.violation(names[i] + ": the connection was not closed after -32600 (" + (l2 == null ? c.lastEnd() : cut(l2, 200)) + ")");
            }
        }
        // exactly at the limit: accepted (an error about the params, not about the line), the connection stays open
        String head = "{\"jsonrpc\":\"2.0\",\"id\":\"at-limit\",\"method\":\"server.info\",\"params\":{\"pad\":\"";
        String tail = "\"}}";
        String atLimit = head + "a".repeat(MAX_LINE - head.length() - tail.length()) + tail;
        try (RawConn c = greeted(socket)) {
            c.send(atLimit + "\n", 2_000);
            String l = c.readLine(2_000);
            c.send("{\"jsonrpc\":\"2.0\",\"id\":\"after\",\"method\":\"server.info\"}\n", 2_000);
            String l2 = c.readLine(2_000);
            out.append("line of exactly max_line_bytes: ").append(l == null ? c.lastEnd() : "error " + code(object(l))).append(l2 != null && l2.contains("\"result\"") ? ", connection kept" : ", connection lost");
            if (code(object(l)) != -32602) r.violation("a line of exactly max_line_bytes: expected -32602 (unknown field pad), got " + cut(l, 200));
            if (l2 == null || !l2.contains("\"result\"")) r.violation("a line of exactly max_line_bytes: the connection did not go on (" + (l2 == null ? c.lastEnd() : cut(l2, 200)) + ")");
        }
        return out.toString();
    }

    // ---- 2. slowloris --------------------------------------------------------------------------------------------------

    Result slowloris() throws Exception {
        int n = size.slowConns();
        Result r = new Result("adv-slowloris", n + " connections each dribble an unfinished line up to max_line_bytes-1, 1-" + size.slowMaxChunk()
                + " bytes at a time, while a normal client measures export.create round trips");
        r.param("connections", n).param("max_chunk_bytes", size.slowMaxChunk()).param("dribble_ms", size.slowMillis());
        JsonObject policy = new JsonObject().put(CONNS, n + 32);
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy)) {
            run.baseline();
            normalClient(run.socket(), 500, null, r, "warm-up");   // the JIT, so that "alone" is not the cold start
            Histogram alone = normalClient(run.socket(), 1_000, null, r, "alone");
            List<RawConn> conns = new ArrayList<>();
            try {
                for (int i = 0; i < n; i++) conns.add(greeted(run.socket()));
                AtomicBoolean stop = new AtomicBoolean();
                java.util.concurrent.atomic.AtomicReference<Histogram> duringRef = new java.util.concurrent.atomic.AtomicReference<>(Stats.histogram());
                Thread normal = new Thread(() -> duringRef.set(normalClient(run.socket(), Long.MAX_VALUE, stop, r, "during")), "normal-client");
                double cpu0 = run.cpuSoFar();
                long t0 = System.nanoTime();
                normal.start();
                byte[] payload = ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",\"params\":{\"pad\":\"" + "a".repeat(MAX_LINE))
                        .substring(0, MAX_LINE - 1).getBytes(StandardCharsets.UTF_8);
                int[] off = new int[n];
                long sends = 0, closedEarly = 0;
                boolean[] gone = new boolean[n];
                Random rnd = new Random(7);
                while (true) {
                    double progress = Math.min(1.0, (System.nanoTime() - t0) / 1e6 / size.slowMillis());
                    int target = (int) (progress * payload.length);
                    boolean allDone = true, any = false;
                    for (int i = 0; i < n; i++) {
                        if (gone[i] || off[i] >= payload.length) continue;
                        allDone = false;
                        if (off[i] >= target) continue;
                        int k = Math.min(1 + rnd.nextInt(size.slowMaxChunk()), payload.length - off[i]);
                        try {
                            off[i] += conns.get(i).trySend(payload, off[i], k);
                            sends++;
                            any = true;
                        } catch (RawConn.PeerGone e) {
                            gone[i] = true;
                            closedEarly++;
                        }
                    }
                    if (allDone || (System.nanoTime() - t0) / 1e6 > size.slowMillis() * 2) break;
                    if (!any) LockSupport.parkNanos(1_000_000);
                }
                long dribbleMs = (System.nanoTime() - t0) / 1_000_000;
                double cpuDribble = run.cpuSoFar() - cpu0;
                // hold every connection one byte short of the limit for a second, the normal client still measuring
                long holdEnd = System.nanoTime() + 1_000_000_000L;
                while (System.nanoTime() < holdEnd) LockSupport.parkNanos(50_000_000);
                stop.set(true);
                normal.join(10_000);
                Histogram during = duringRef.get();
                long open = 0;
                for (RawConn c : conns) if (c.readLine(1) == null && c.lastEnd() == RawConn.End.TIMEOUT) open++;
                long total = 0;
                for (int o : off) total += o;
                r.metric("dribbled_bytes", total).metric("sends", sends).metric("dribble_ms", dribbleMs)
                        .metric("connections_still_open", open).metric("closed_while_under_limit", closedEarly)
                        .metric("daemon_cpu_during_dribble_s", Math.round(cpuDribble * 100) / 100.0)
                        .metric("daemon_cpu_us_per_dribble_send", Math.round(cpuDribble * 1e6 / Math.max(1, sends) * 10) / 10.0);
                r.metric("normal_alone_p50_us", alone.getValueAtPercentile(50) / 1000.0).metric("normal_alone_p99_us", alone.getValueAtPercentile(99) / 1000.0)
                        .metric("normal_during_p50_us", during.getValueAtPercentile(50) / 1000.0).metric("normal_during_p99_us", during.getValueAtPercentile(99) / 1000.0)
                        .metric("normal_during_max_ms", during.getMaxValue() / 1e6).metric("normal_during_requests", during.getTotalCount());
                r.latencies.put("normal export.create alone", alone);
                r.latencies.put("normal export.create during slowloris", during);
                if (during.getTotalCount() == 0) r.violation("the normal client completed no request during the slowloris");
                if (during.getMaxValue() > 2_000_000_000L) r.violation("a normal request took " + during.getMaxValue() / 1_000_000 + " ms during the slowloris (over 2 s)");
                r.metric("sent", String.format("%d connections x %,d bytes (an unfinished line) in %,d sends of 1-%d bytes over %.1f s", n, payload.length, sends, size.slowMaxChunk(), dribbleMs / 1000.0));
                r.metric("daemon_did", String.format("normal export.create p50/p99 %.0f/%.0f µs alone, %.0f/%.0f µs during; daemon CPU %.2f s for the dribble; %d of %d held connections still open",
                        alone.getValueAtPercentile(50) / 1000.0, alone.getValueAtPercentile(99) / 1000.0, during.getValueAtPercentile(50) / 1000.0,
                        during.getValueAtPercentile(99) / 1000.0, cpuDribble, open, n));
            } finally {
                for (RawConn c : conns) c.close();
            }
            run.after();
        }
        return r;
    }

    /**
     * A well-behaved client: export.create then export.release, one at a time, for {@code millis} or until
     * {@code stop}; the export.create round trips. Failures are violations.
     */
    private static Histogram normalClient(Path socket, long millis, AtomicBoolean stop, Result r, String when) {
        Histogram h = Stats.histogram();
        long end = millis == Long.MAX_VALUE ? Long.MAX_VALUE : System.nanoTime() + millis * 1_000_000;
        try (VfioExportClient c = VfioExportClient.connect(socket)) {
            c.timeout(10_000);
            while (System.nanoTime() < end && (stop == null || !stop.get())) {
                long t0 = System.nanoTime();
                var b = c.export(DEV, 0, 0, 4096);
                h.recordValue(System.nanoTime() - t0);
                b.fd().close();
                c.request("export.release", new JsonObject().put("export_id", b.id()));
            }
        } catch (Exception e) {
            synchronized (r) {
                r.violation("the normal client (" + when + ") failed: " + e);
            }
        }
        return h;
    }

    // ---- 3. connection flood --------------------------------------------------------------------------------------------

    Result connectionFlood() throws Exception {
        int limit = size.connLimit(), extra = size.connExtra();
        Result r = new Result("adv-conn-flood", "one uid opens " + (limit + extra) + " connections against max_connections_per_uid " + limit
                + ": the surplus get one -32005 line and are closed, the first ones still work, a new one works after");
        r.param(CONNS, limit).param("surplus", extra);
        try (AdversarialRun run = new AdversarialRun(r, home, work, new JsonObject().put(CONNS, limit))) {
            run.baseline();
            awaitClients(run, 1, 5_000);
            List<RawConn> first = new ArrayList<>(), surplus = new ArrayList<>();
            int firstRetries = 0, firstGreeted = 0, refused = 0, greetedSurplus = 0, otherSurplus = 0, closedAfterRefusal = 0, connectFailed = 0, firstWorking = 0;
            String example = null;
            Histogram refusal = Stats.histogram();
            try {
                for (int i = 0; i < limit; i++) {
                    // the connection that asked for the client count may not be accounted closed yet: a refusal of
                    // one of the first ones is retried for up to 2 s before it counts
                    long deadline = System.nanoTime() + 2_000_000_000L;
                    while (true) {
                        RawConn c = RawConn.connect(run.socket());
                        String l = c.readLine(2_000);
                        if (l != null && l.contains("\"hello\"")) {
                            first.add(c);
                            firstGreeted++;
                            break;
                        }
                        if (code(object(l)) == -32005 && System.nanoTime() < deadline) {
                            c.close();
                            firstRetries++;
                            Thread.sleep(50);
                            continue;
                        }
                        first.add(c);
                        if (example == null) example = "connection " + (i + 1) + " of the first " + limit + ": " + cut(l, 200);
                        break;
                    }
                }
                for (int i = 0; i < extra; i++) {
                    try {
                        surplus.add(RawConn.connect(run.socket()));
                    } catch (IOException e) {
                        connectFailed++;
                    }
                }
                for (RawConn c : surplus) {
                    long t0 = System.nanoTime();
                    String l = c.readLine(5_000);
                    JsonObject o = l == null ? null : object(l);
                    if (code(o) == -32005 && CONNS.equals(limit(o))) {
                        refused++;
                        String l2 = c.readLine(5_000);
                        if (l2 == null && c.lastEnd() != RawConn.End.TIMEOUT) {
                            closedAfterRefusal++;
                            refusal.recordValue(System.nanoTime() - t0);
                        }
                    } else if (l != null && l.contains("\"hello\"")) {
                        greetedSurplus++;
                    } else {
                        otherSurplus++;
                        if (example == null) example = "a surplus connection got " + (l == null ? c.lastEnd() : cut(l, 200));
                    }
                }
                // the first ones still work
                for (RawConn c : first) c.send("{\"jsonrpc\":\"2.0\",\"id\":\"still\",\"method\":\"server.info\"}\n", 2_000);
                for (RawConn c : first) {
                    String l = c.readLine(2_000);
                    if (l != null && l.contains("\"still\"") && l.contains("\"result\"")) firstWorking++;
                }
            } finally {
                for (RawConn c : first) c.close();
                for (RawConn c : surplus) c.close();
            }
            r.metric("first_greeted", firstGreeted).metric("first_retries", firstRetries).metric("first_still_working", firstWorking).metric("surplus_refused_32005", refused)
                    .metric("surplus_closed_after_refusal", closedAfterRefusal).metric("surplus_greeted", greetedSurplus)
                    .metric("surplus_other", otherSurplus).metric("surplus_connect_failed", connectFailed)
                    .metric("refusal_to_close_p99_ms", refusal.getTotalCount() == 0 ? -1 : refusal.getValueAtPercentile(99) / 1e6);
            if (example != null) r.notes.add("adv-conn-flood: " + example);
            if (firstGreeted != limit) r.violation("only " + firstGreeted + " of the first " + limit + " connections were greeted" + (example == null ? "" : ": " + example));
            if (firstWorking != limit) r.violation("only " + firstWorking + " of the first " + limit + " connections answered server.info after the flood");
            if (refused != surplus.size()) r.violation((surplus.size() - refused) + " of " + surplus.size() + " surplus connections did not get -32005 " + CONNS
                    + " (" + greetedSurplus + " were greeted with hello, " + otherSurplus + " got something else)");
            if (closedAfterRefusal != refused) r.violation((refused - closedAfterRefusal) + " refused connections were not closed within 5 s");
            r.metric("sent", (limit + extra) + " connections from uid 0 (limit " + limit + "), then server.info on the first " + limit);
            r.metric("daemon_did", String.format("greeted %d/%d first; surplus: %d refused with -32005 (%d then closed), %d greeted, %d other; %d/%d first still answered",
                    firstGreeted, limit, refused, closedAfterRefusal, greetedSurplus, otherSurplus, firstWorking, limit));
            run.after();
        }
        return r;
    }

    /** Waits until the daemon counts {@code n} open connections (the asking one included). */
    private static void awaitClients(AdversarialRun run, long n, long ms) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < deadline) {
            if (run.daemon.info().getLong("clients") == n) return;
            Thread.sleep(20);
        }
    }

    // ---- 4. unread fds ------------------------------------------------------------------------------------------------

    Result unreadFds() throws Exception {
        int fdLimit = size.unreadFdLimit(), reqLimit = 1024;
        Result r = new Result("adv-unread-fds", "a client pipelines export.create and never reads: beyond " + FDS_IN_FLIGHT + " "
                + fdLimit + " they are refused (-32005) or the daemon stops reading it; bounded live exports and RSS; nothing left after it closes");
        JsonObject policy = new JsonObject().put(FDS_IN_FLIGHT, fdLimit).put(REQS_IN_FLIGHT, reqLimit).put(PER_CLIENT, 4096)
                .put(QUOTA, 16_384).put(OUTPUT, 1 << 20);
        r.param("requests", size.unreadRequests()).param("time_ms", size.unreadMillis());
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy)) {
            run.baseline();
            AtomicLong peakExports = new AtomicLong();
            AtomicBoolean stop = new AtomicBoolean();
            Thread monitor = monitorExports(run, peakExports, stop);
            long sent = 0;
            boolean stalled = false;
            String peerGone = null;
            long t0 = System.nanoTime();
            long secondCode;
            String secondWhat;
            try (RawConn c = greeted(run.socket())) {
                while (sent < size.unreadRequests() && (System.nanoTime() - t0) / 1_000_000 < size.unreadMillis()) {
                    byte[] b = String.format(CREATE, sent).getBytes(StandardCharsets.UTF_8);
                    try {
                        // a line is sent whole (a cut one would be malformed): when the socket stays full for 1.5 s
                        // the daemon has stopped reading this connection
                        if (c.send(b, 1_500) < b.length) {
                            stalled = true;
                            break;
                        }
                    } catch (RawConn.PeerGone e) {
                        peerGone = e.getMessage();
                        break;
                    }
                    sent++;
                }
                long sendMs = (System.nanoTime() - t0) / 1_000_000;
                long settled = settleExports(run, 3_000);
                long fdsHeld = run.daemon.fdCount();
                // another connection of the same uid, while this one holds its fds unread
                long s0 = System.nanoTime();
                try (VfioExportClient other = VfioExportClient.connect(run.socket())) {
                    other.timeout(2_000);
                    Message m = other.call("export.create", new JsonObject().put("device", DEV).put("region", 0).put("offset", 0).put("length", 4096));
                    for (Fd fd : m.fds()) fd.close();
                    secondCode = code(m.object());
                    secondWhat = secondCode == 0 ? "an export" : "error " + secondCode + " " + limit(m.object());
                } catch (IOException e) {
                    secondCode = -1;
                    secondWhat = "no answer: " + e.getMessage();
                    r.violation("another connection of the same uid got no export.create answer within 2 s: " + e.getMessage());
                }
                long secondMs = (System.nanoTime() - s0) / 1_000_000;
                stop.set(true);
                monitor.join(2_000);
                r.metric("requests_sent", sent).metric("bytes_sent", c.bytesSent).metric("send_ms", sendMs).metric("daemon_stopped_reading", stalled)
                        .metric("closed_by_daemon", peerGone != null).metric("exports_peak", peakExports.get()).metric("exports_when_settled", settled)
                        .metric("daemon_fds_holding", fdsHeld).metric("other_connection_got", secondWhat).metric("other_connection_ms", secondMs);
                long bound = fdLimit + reqLimit;
                if (peakExports.get() > bound) {
                    r.violation("live exports of the non-reading client reached " + peakExports.get() + ", over " + FDS_IN_FLIGHT + " + "
                            + REQS_IN_FLIGHT + " = " + bound);
                }
                r.metric("sent", String.format("%,d export.create pipelined on one connection (%,d bytes in %.1f s), nothing read", sent, c.bytesSent, sendMs / 1000.0));
                r.metric("daemon_did", String.format("live exports peak %,d (bound %,d); %s; the daemon's fds while held %d; another connection of the uid got %s in %d ms",
                        peakExports.get(), bound, stalled ? "stopped reading the client" : peerGone != null ? "closed the client" : "read every request",
                        fdsHeld, secondWhat, secondMs));
            } finally {
                stop.set(true);
            }
            run.after();
        }
        return r;
    }

    /** Samples server.info exports every 100 ms into {@code peak} until {@code stop}. */
    private static Thread monitorExports(AdversarialRun run, AtomicLong peak, AtomicBoolean stop) {
        Thread t = new Thread(() -> {
            try (VfioExportClient c = VfioExportClient.connect(run.socket())) {
                c.timeout(5_000);
                while (!stop.get()) {
                    long n = c.request("server.info").getLong("exports");
                    peak.accumulateAndGet(n, Math::max);
                    Thread.sleep(100);
                }
            } catch (Exception e) {
                // the monitor is best effort: the scenario's own checks decide
            }
        }, "exports-monitor");
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** The live export count once two readings 200 ms apart agree (bounded). */
    private static long settleExports(AdversarialRun run, long ms) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        long prev = run.exports();
        while (System.currentTimeMillis() < deadline) {
            Thread.sleep(200);
            long now = run.exports();
            if (now == prev) return now;
            prev = now;
        }
        return prev;
    }

    // ---- 5. kill -9 under a reset loop ------------------------------------------------------------------------------------

    Result killUnderResets() throws Exception {
        int rounds = size.killRounds(), parallel = 4;
        Result r = new Result("adv-kill9-resets", "client processes (python3) export and hold, SIGKILLed at random moments while another client resets "
                + DEV + " in a loop; a subscriber's stream passes EventInvariants; nothing left after");
        r.param("rounds", rounds).param("parallel", parallel);
        Path script = home.resolve("load-tests/crash-client.py");
        // the system interpreter when there is one: a version manager's shim takes a second to start each client
        String python = Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
        try (AdversarialRun run = new AdversarialRun(r, home, work, new JsonObject().put("subscriber_queue", 65_536))) {
            Watcher w = new Watcher(run.socket(), "all", false, 0, 0);
            try {
                run.baseline();
                long seq0 = run.daemon.heads().get(DEV);
                AtomicBoolean stop = new AtomicBoolean();
                AtomicLong resets = new AtomicLong(), busy = new AtomicLong();
                List<String> errors = Collections.synchronizedList(new ArrayList<>());
                Thread resetter = new Thread(() -> {
                    try (VfioExportClient s = VfioExportClient.connect(run.socket())) {
                        while (!stop.get()) {
                            var m = s.call("device.reset", new JsonObject().put("device", DEV));
                            int code = code(m.object());
                            if (code == 0) resets.incrementAndGet();
                            else if (code == -32004) busy.incrementAndGet();
                            else errors.add("device.reset: " + m.object().encode());
                            LockSupport.parkNanos(2_000_000);
                        }
                    } catch (Exception e) {
                        errors.add("reset loop: " + e);
                    }
                }, "reset-loop");
                resetter.start();
                AtomicInteger next = new AtomicInteger();
                List<Thread> ts = new ArrayList<>();
                for (int p = 0; p < parallel; p++) {
                    Thread t = new Thread(() -> {
                        try {
                            while (next.getAndIncrement() < rounds) {
                                Process child = new ProcessBuilder(python, script.toString(), run.socket().toString(), DEV).redirectErrorStream(true).start();
                                BufferedReader in = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
                                String go = in.readLine();
                                if (!"go".equals(go)) errors.add("child said " + go);
                                LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(0, 20_000_000));
                                child.destroyForcibly();   // SIGKILL
                                child.waitFor(10, TimeUnit.SECONDS);
                            }
                        } catch (Exception e) {
                            errors.add(e.toString());
                        }
                    }, "killer-" + p);
                    ts.add(t);
                    t.start();
                }
                for (Thread t : ts) t.join();
                stop.set(true);
                resetter.join(10_000);
                for (String e : errors.subList(0, Math.min(10, errors.size()))) r.violation(e);
                run.after();
                var heads = run.daemon.heads();
                if (!w.awaitHeads(heads, 30_000)) r.violation("the subscriber did not reach " + heads);
                for (String v : w.violations(true)) if (r.violations.size() < 40) r.violation("subscriber: " + v);
                long events = heads.get(DEV) - seq0;
                r.metric("resets", resets.get()).metric("resets_busy", busy.get()).metric("events", events)
                        .metric("subscriber_events", w.events()).metric("subscriber_lost", w.lostEvents());
                if (resets.get() == 0) r.violation("no reset succeeded");
                r.metric("sent", rounds + " python3 clients (" + parallel + " at a time) pipelining export.create, SIGKILLed after 0-20 ms; device.reset in a loop");
                r.metric("daemon_did", String.format("%,d resets (%,d busy), %,d events, subscriber saw %,d (lost %,d), %d invariant violations",
                        resets.get(), busy.get(), events, w.events(), w.lostEvents(), w.violations(true).size()));
            } finally {
                w.close();
            }
        }
        return r;
    }

    // ---- 6. stalled subscribers ------------------------------------------------------------------------------------------

    Result stalledSubscribers() throws Exception {
        int s = size.stalledSubs();
        int queue = 256;   // small, so that the smoke's few thousand events overflow it
        Result r = new Result("adv-stalled-subscribers", s + " subscribers that never read while exports and resets flood: bounded memory, events.lost when they resume (or closed), a normal subscriber loses nothing");
        r.param("stalled", s).param("pairs_per_client", size.stalledPairs()).param("subscriber_queue", queue);
        JsonObject policy = new JsonObject().put("subscriber_queue", queue).put(SUBS, s + 16).put(CONNS, s + 64);
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy)) {
            run.baseline();
            Watcher normal = new Watcher(run.socket(), "normal", false, 0, 0);
            List<Watcher> stalled = new ArrayList<>();
            try {
                for (int i = 0; i < s; i++) stalled.add(new Watcher(run.socket(), "stalled-" + i, true, 0, 0));
                AtomicBoolean stop = new AtomicBoolean();
                AtomicLong resets = new AtomicLong();
                Thread resetter = new Thread(() -> {
                    try (VfioExportClient c = VfioExportClient.connect(run.socket())) {
                        while (!stop.get()) {
                            if (code(c.call("device.reset", new JsonObject().put("device", DEV)).object()) == 0) resets.incrementAndGet();
                            LockSupport.parkNanos(20_000_000);
                        }
                    } catch (Exception e) {
                        synchronized (r) {
                            r.violation("reset loop: " + e);
                        }
                    }
                }, "reset-loop");
                resetter.start();
                // a fixed amount of events (not of time), well over what a stalled subscriber's queues and socket
                // buffers hold, so that it overflows however slow the machine is; the time bound is a safety net
                Churn churn = new Churn(run.socket(), Scenarios.DEVICES, 8, size.stalledPairs(), 60_000, false, 1).run();
                stop.set(true);
                resetter.join(10_000);
                for (String e : churn.errors.subList(0, Math.min(5, churn.errors.size()))) r.violation("churn: " + e);
                long rssLoaded = AdversarialRun.mib(ProcSampler.rssKib(run.daemon.pid));
                for (Watcher w : stalled) w.unstall();
                var heads = run.daemon.heads();
                int lostNotices = 0, closed = 0;
                for (Watcher w : stalled) {
                    if (!w.awaitHeads(heads, 30_000) && !w.closedByServer()) r.violation("a stalled subscriber did not catch up after resuming");
                    if (w.closedByServer()) closed++;
                    else if (w.lostNotices() > 0) lostNotices++;
                    for (String v : w.violations(false)) if (r.violations.size() < 40) r.violation("stalled subscriber: " + v);
                }
                if (!normal.awaitHeads(heads, 30_000)) r.violation("the normal subscriber did not reach " + heads);
                for (String v : normal.violations(true)) if (r.violations.size() < 40) r.violation("normal subscriber: " + v);
                if (normal.lostEvents() > 0) r.violation("the normal subscriber lost " + normal.lostEvents() + " events");
                if (lostNotices + closed < s) r.violation((s - lostNotices - closed) + " stalled subscribers got neither events.lost nor a close");
                r.metric("pairs", churn.pairs.get()).metric("pairs_per_s", Math.round(churn.pairsPerSecond())).metric("resets", resets.get())
                        .metric("events", heads.get(DEV) + heads.get(Scenarios.DEV2)).metric("stalled_with_events_lost", lostNotices).metric("stalled_closed", closed)
                        .metric("normal_events", normal.events()).metric("normal_lost", normal.lostEvents()).metric("rss_loaded_mib", rssLoaded);
                r.metric("sent", String.format("%d stalled + 1 normal subscriber; 8 clients churned %,d export/release pairs and %,d resets in %.1f s",
                        s, churn.pairs.get(), resets.get(), churn.elapsedNanos / 1e9));
                r.metric("daemon_did", String.format("%d stalled got events.lost, %d were closed; the normal one saw %,d events, lost %,d", lostNotices, closed, normal.events(), normal.lostEvents()));
            } finally {
                normal.close();
                for (Watcher w : stalled) w.close();
            }
            run.after();
        }
        return r;
    }

    // ---- 7. per-uid quotas ----------------------------------------------------------------------------------------------

    Result uidQuotas() throws Exception {
        int q = size.quotaExports(), conns = size.quotaConns(), subs = size.quotaSubs();
        Result r = new Result("adv-uid-quotas", conns + " connections of one uid together hit " + QUOTA + " " + q + " (-32005, data.limit " + QUOTA
                + "); subscriptions beyond " + SUBS + " " + subs + " are refused");
        JsonObject policy = new JsonObject().put(QUOTA, q).put(PER_CLIENT, q * 10).put(SUBS, subs).put(CONNS, conns + 16);
        r.param(QUOTA, q).param("connections", conns).param(SUBS, subs);
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy)) {
            run.baseline();
            List<VfioExportClient> cs = new ArrayList<>();
            try {
                for (int i = 0; i < conns; i++) cs.add(VfioExportClient.connect(run.socket()).timeout(5_000));
                JsonObject p = new JsonObject().put("device", DEV).put("region", 0).put("offset", 0).put("length", 4096);
                int created = 0, refusedUid = 0, refusedOther = 0;
                String firstRefusal = null;
                List<List<String>> ids = new ArrayList<>();
                for (int i = 0; i < conns; i++) ids.add(new ArrayList<>());
                int attempts = q + 4 * conns;
                for (int i = 0; i < attempts; i++) {
                    int k = i % conns;
                    Message m = cs.get(k).call("export.create", p);
                    for (Fd fd : m.fds()) fd.close();
                    JsonObject o = m.object();
                    if (code(o) == 0) {
                        created++;
                        ids.get(k).add(o.getJsonObject("result").getString("export_id"));
                    } else {
                        if (firstRefusal == null) firstRefusal = "after " + created + ": " + cut(o.encode(), 300);
                        if (code(o) == -32005 && QUOTA.equals(limit(o))) refusedUid++;
                        else refusedOther++;
                    }
                }
                long live = run.exports();
                // one released on one connection makes room for one more on another
                String afterRelease = "n/a";
                if (!ids.getFirst().isEmpty()) {
                    cs.getFirst().request("export.release", new JsonObject().put("export_id", ids.getFirst().removeFirst()));
                    Message m = cs.get(conns - 1).call("export.create", p);
                    for (Fd fd : m.fds()) fd.close();
                    afterRelease = code(m.object()) == 0 ? "created" : "error " + code(m.object()) + " " + limit(m.object());
                    if (created <= q && code(m.object()) != 0) r.violation("after one release, another connection of the uid could not create: " + cut(m.object().encode(), 200));
                }
                if (created != q) r.violation(conns + " connections of one uid created " + created + " exports, " + QUOTA + " is " + q);
                if (refusedUid != attempts - created) r.violation((attempts - created - refusedUid) + " refusals were not -32005 with data.limit " + QUOTA + " (" + refusedOther + " other errors)");
                // subscriptions
                int subscribed = 0, subRefused = 0, subOther = 0;
                String lastSub = null;
                String firstSubRefusal = null;
                for (int i = 0; i < subs + 2 * conns; i++) {
                    VfioExportClient c = cs.get(i % conns);
                    Message m = c.call("events.subscribe", new JsonObject().put("devices", new JsonArray().add(DEV)));
                    JsonObject o = m.object();
                    if (code(o) == 0) {
                        subscribed++;
                        lastSub = o.getJsonObject("result").getString("subscription") + "@" + (i % conns);
                    } else if (code(o) == -32005 && SUBS.equals(limit(o))) {
                        subRefused++;
                        if (firstSubRefusal == null) firstSubRefusal = cut(o.encode(), 300);
                    } else {
                        subOther++;
                    }
                }
                String afterUnsub = "n/a";
                if (lastSub != null) {
                    String[] sp = lastSub.split("@");
                    cs.get(Integer.parseInt(sp[1])).request("events.unsubscribe", new JsonObject().put("subscription", sp[0]));
                    JsonObject o = cs.getFirst().call("events.subscribe", new JsonObject().put("devices", new JsonArray().add(DEV))).object();
                    afterUnsub = code(o) == 0 ? "subscribed" : "error " + code(o);
                    if (subscribed <= subs && code(o) != 0) r.violation("after one unsubscribe, a new subscription was refused: " + cut(o.encode(), 200));
                }
                if (subscribed != subs) r.violation(subscribed + " subscriptions were accepted, " + SUBS + " is " + subs);
                r.metric("exports_created", created).metric("exports_refused_uid", refusedUid).metric("exports_refused_other", refusedOther)
                        .metric("exports_live", live).metric("after_one_release", afterRelease).metric("subscriptions_accepted", subscribed)
                        .metric("subscriptions_refused", subRefused).metric("subscriptions_other_errors", subOther).metric("after_one_unsubscribe", afterUnsub);
                if (firstRefusal != null) r.notes.add("adv-uid-quotas, first export refusal " + firstRefusal);
                if (firstSubRefusal != null) r.notes.add("adv-uid-quotas, first subscription refusal: " + firstSubRefusal);
                r.metric("sent", String.format("%,d export.create round-robin over %d connections (quota %,d); %d events.subscribe (limit %d)", attempts, conns, q, subs + 2 * conns, subs));
                r.metric("daemon_did", String.format("created %,d, refused %,d with -32005 %s (%d other); %d subscriptions accepted, %d refused", created, refusedUid, QUOTA, refusedOther, subscribed, subRefused));
            } finally {
                for (VfioExportClient c : cs) c.close();
            }
            run.after();
        }
        return r;
    }

    // ---- 8. another uid --------------------------------------------------------------------------------------------------

    /** The client run as uid 65534: "first" sends one request and reports how it was answered and closed; "flood" floods. */
    private static final String DENIED_CLIENT = String.join("\n",
            "import socket, json, sys, os, time",
            "mode, path, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])",
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)",
            "s.connect(path)",
            "out = {'uid': os.getuid(), 'gid': os.getgid()}",
            "def ending(timeout):",
            "    s.settimeout(timeout); lines = []; buf = b''",
            "    try:",
            "        while True:",
            "            d = s.recv(65536)",
            "            if not d: return 'eof', lines",
            "            buf += d",
            "            while b'\\n' in buf:",
            "                l, buf = buf.split(b'\\n', 1); lines.append(l.decode('utf-8', 'replace'))",
            "    except socket.timeout: return 'open', lines",
            "    except ConnectionResetError: return 'reset', lines",
            "if mode == 'first':",
            "    t0 = time.monotonic()",
            "    s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\"}\\n')",
            "    end, lines = ending(secs)",
            "    out['ms'] = int((time.monotonic() - t0) * 1000); out['end'] = end; out['lines'] = lines[:3]",
            "    answers = [json.loads(l) for l in lines if '\"id\":1' in l]",
            "    out['code'] = answers[0].get('error', {}).get('code') if answers else None",
            "else:",
            "    chunk = b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\"}\\n' * 1000",
            "    sent = 0; t0 = time.monotonic(); end = 'time'",
            "    s.settimeout(0.5)",
            "    try:",
            "        while time.monotonic() - t0 < secs:",
            "            try: sent += s.send(chunk)",
            "            except socket.timeout: pass",
            "    except (BrokenPipeError, ConnectionResetError) as e: end = type(e).__name__",
            "    out['sent_bytes'] = sent; out['end'] = end; out['ms'] = int((time.monotonic() - t0) * 1000)",
            "    e2, lines = ending(1.0); out['after'] = e2; out['lines_read'] = len(lines)",
            "print(json.dumps(out), flush=True)");

    Result anotherUid() throws Exception {
        Result r = new Result("adv-another-uid", "a client as uid 65534 (setpriv) gets -32003 on its first request and is closed; a denied client's flood does not grow the daemon");
        Path python = Path.of("/usr/bin/python3");
        String skip = !Integer.valueOf(0).equals(Files.getAttribute(Path.of("/proc/self"), "unix:uid")) ? "not root"
                : !(Files.isExecutable(Path.of("/usr/bin/setpriv")) || Files.isExecutable(Path.of("/bin/setpriv"))) ? "no setpriv"
                : !Files.isExecutable(python) ? "no /usr/bin/python3" : null;
        try (AdversarialRun run = new AdversarialRun(r, home, work, new JsonObject())) {
            run.baseline();
            if (skip != null) {
                r.notes.add("adv-another-uid skipped: " + skip);
                r.metric("skipped", skip);
                run.after();
                return r;
            }
            // The socket's directory is this scenario's own: made traversable, the socket writable by others, so the
            // policy is what decides. The child starts in that directory and connects by a relative name, so no
            // directory above it needs to be opened.
            Path dir = run.socket().getParent();
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
            Files.setPosixFilePermissions(run.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
            JsonObject first = denied(python, dir, "first", 2.5);
            r.metric("first_request", first.encode());
            if (!Integer.valueOf(-32003).equals(first.getInteger("code"))) r.violation("the denied client's first request got " + first.getValue("code") + ", not -32003: " + first.encode());
            if (!"eof".equals(first.getString("end"))) r.violation("the denied client was not closed after its -32003 (" + first.getString("end") + " after 2.5 s)");
            double cpu0 = run.cpuSoFar();
            long secs = size.deniedFloodMillis() / 1000;
            JsonObject flood = denied(python, dir, "flood", secs);
            double cpu = run.cpuSoFar() - cpu0;
            r.metric("flood", flood.encode()).metric("daemon_cpu_during_flood_s", Math.round(cpu * 100) / 100.0);
            if ("time".equals(flood.getString("end")) && !"eof".equals(flood.getString("after"))) {
                r.violation(String.format("the denied client flooded for %d s (%,d bytes taken) and was never closed", secs, flood.getLong("sent_bytes", 0L)));
            }
            r.metric("sent", String.format("uid 65534: one device.list, then a flood of device.list lines for up to %d s without reading", secs));
            r.metric("daemon_did", String.format("first request: %s then %s; flood: %,d bytes taken, ended by %s (then %s)", first.getValue("code"), first.getString("end"),
                    flood.getLong("sent_bytes", 0L), flood.getString("end"), flood.getString("after")));
            run.after();
        }
        return r;
    }

    private static boolean sleep(long ms) throws InterruptedException {
        Thread.sleep(ms);
        return true;
    }

    private static JsonObject denied(Path python, Path dir, String mode, double secs) throws Exception {
        Process p = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python.toString(), "-I", "-c", DENIED_CLIENT,
                mode, "vfio-export.sock", String.valueOf(secs)).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor((long) secs + 30, TimeUnit.SECONDS)) p.destroyForcibly();
        String last = out.lines().reduce((a, b) -> b).orElse("");
        JsonObject o = object(last);
        if (o == null) throw new IOException("the uid 65534 client (" + mode + ") printed: " + out);
        return o;
    }

    // ---- 9. fd exhaustion --------------------------------------------------------------------------------------------------

    Result fdExhaustion() throws Exception {
        int nofile = 300;
        Result r = new Result("adv-fd-exhaustion", "a daemon under prlimit --nofile=" + nofile + " with per-uid limits set far above it: clients export and connect until EMFILE; the daemon stays up and answers, no export left after, a new connection is greeted");
        JsonObject policy = new JsonObject().put(CONNS, 100_000).put(QUOTA, 100_000).put(PER_CLIENT, 100_000).put(FDS_IN_FLIGHT, 100_000)
                .put(REQS_IN_FLIGHT, 100_000).put(SUBS, 100_000);
        r.param("nofile", nofile);
        if (!Files.isExecutable(Path.of("/usr/bin/prlimit")) && !Files.isExecutable(Path.of("/bin/prlimit"))) {
            r.notes.add("adv-fd-exhaustion skipped: no prlimit (util-linux)");
            r.metric("skipped", "no prlimit");
            return r;
        }
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy, new JsonObject(), List.of("prlimit", "--nofile=" + nofile + ":" + nofile, "--"),
                // Netty warns on every accept that fails for lack of fds: expected here (what follows must not be)
                List.of("Too many open files", "EMFILE", "errno 24", "DefaultChannelPipeline onUnhandledInboundException"))) {
            run.baseline();
            // opened while fds are plenty: asks server.info at the end even if the daemon can no longer accept
            VfioExportClient keeper = VfioExportClient.connect(run.socket()).timeout(2_000);
            List<VfioExportClient> exporters = new ArrayList<>();
            List<RawConn> pending = new ArrayList<>();
            java.util.Set<RawConn> refusedWhileFull = new java.util.HashSet<>(), greetedEarly = new java.util.HashSet<>();
            TreeMap<String, Integer> refusals = new TreeMap<>();
            int created = 0, internal = 0;
            String firstRefusal = null;
            long liveAtExhaustion, fdsAtExhaustion, answerDuringMs;
            int greetedWhileFull = 0, greetedAfter = 0, connectFailed = 0;
            double cpuWhileFull;
            double ownCpuWhileFull;   // without the JIT compiler threads: a busy loop shows here, compiling does not
            try {
                for (int i = 0; i < 2; i++) exporters.add(VfioExportClient.connect(run.socket()).timeout(5_000));
                JsonObject p = new JsonObject().put("device", DEV).put("region", 0).put("offset", 0).put("length", 4096);
                int consecutiveErrors = 0;
                try {
                    for (int round = 0; round < 200 && consecutiveErrors < 64; round++) {
                        VfioExportClient c = exporters.get(round % 2);
                        Object[] ids = new Object[16];
                        for (int i = 0; i < ids.length; i++) ids[i] = c.send("export.create", p);
                        for (Object id : ids) {
                            Message m = c.await(id);
                            for (Fd fd : m.fds()) fd.close();
                            JsonObject o = m.object();
                            if (code(o) == 0) {
                                created++;
                                consecutiveErrors = 0;
                            } else {
                                consecutiveErrors++;
                                if (code(o) == ErrorCode.INTERNAL_ERROR.code) internal++;
                                refusals.merge(code(o) + (limit(o) != null ? " " + limit(o) : errnoName(o) != null ? " " + errnoName(o) : ""), 1, Integer::sum);
                                if (firstRefusal == null) firstRefusal = "after " + created + " exports: " + cut(o.encode(), 300);
                            }
                        }
                    }
                } catch (IOException e) {
                    r.violation("an exporting connection failed while the daemon ran out of fds: " + e);
                }
                fdsAtExhaustion = run.daemon.fdCount();
                // an existing connection still gets answers while the fd table is full (a new one may not be accepted)
                long t0 = System.nanoTime();
                try {
                    liveAtExhaustion = exporters.getFirst().timeout(2_000).request("server.info").getLong("exports");
                    answerDuringMs = (System.nanoTime() - t0) / 1_000_000;
                } catch (IOException | org.vfioexport.client.vertx.RpcError e) {
                    liveAtExhaustion = -1;
                    answerDuringMs = -1;
                    r.violation("an existing connection got no server.info answer within 2 s while out of fds: " + e.getMessage());
                }
                // new connections while the table is full: accepted later, or refused, never a crash
                double c0 = run.cpuSoFar();
                double own0 = run.cpuOutsideJit();
                long w0 = System.nanoTime();
                for (int i = 0; i < 32; i++) {
                    try {
                        pending.add(RawConn.connect(run.socket()));
                    } catch (IOException e) {
                        connectFailed++;
                    }
                }
                // each gets hello, or the polite refusal (-32005, limit "fds") and a close; or waits in the backlog
                long greetDeadline = System.nanoTime() + 1_000_000_000L;   // one second for all of them
                for (RawConn c : pending) {
                    String l = c.readLine(Math.max(0, (greetDeadline - System.nanoTime()) / 1_000_000));
                    if (l != null && l.contains("\"hello\"")) {
                        greetedWhileFull++;
                        greetedEarly.add(c);
                    } else if (l != null && l.contains("-32005") && l.contains("\"fds\"")) refusedWhileFull.add(c);
                    else if (l != null) r.violation("a connection made while out of fds got neither hello nor the refusal: " + l);
                }
                LockSupport.parkNanos(1_000_000_000L);
                double windowS = (System.nanoTime() - w0) / 1e9;
                cpuWhileFull = (run.cpuSoFar() - c0) / windowS;
                ownCpuWhileFull = Math.max(0, run.cpuOutsideJit() - own0) / windowS;
            } finally {
                for (VfioExportClient c : exporters) c.close();
            }
            // the exporters are gone: their exports are released, fds free again, the waiting connections get their turn
            long greetDeadline = System.nanoTime() + AdversarialRun.ANSWER_LIMIT_MS * 1_000_000;   // 2 s for all of them
            int waiting = 0;
            for (RawConn c : pending) {
                if (refusedWhileFull.contains(c) || greetedEarly.contains(c)) {   // answered already
                    c.close();
                    continue;
                }
                waiting++;
                String l = c.readLine(Math.max(0, (greetDeadline - System.nanoTime()) / 1_000_000));
                if (l != null && l.contains("\"hello\"")) greetedAfter++;
                c.close();
            }
            int unanswered = waiting - greetedAfter;
            if (unanswered > 0) r.violation(unanswered + " of " + pending.size() + " connections made while out of fds got neither the refusal nor, within 2 s once fds were free again, hello");
            r.metric("connections_refused_while_full", refusedWhileFull.size());
            long leftSeenByKeeper = -1;
            try {
                long deadline = System.currentTimeMillis() + 5_000;
                do {
                    leftSeenByKeeper = keeper.request("server.info").getLong("exports");
                } while (leftSeenByKeeper != 0 && System.currentTimeMillis() < deadline && sleep(50));
            } catch (IOException | org.vfioexport.client.vertx.RpcError e) {
                r.violation("the connection kept open through the exhaustion got no server.info answer: " + e.getMessage());
            } finally {
                keeper.close();
            }
            r.metric("exports_left_seen_by_kept_connection", leftSeenByKeeper);
            if (leftSeenByKeeper > 0) r.violation(leftSeenByKeeper + " exports left after every exporting client went away (seen on a connection kept open)");
            r.metric("exports_created", created).metric("refusals", refusals.toString()).metric("live_at_exhaustion", liveAtExhaustion)
                    .metric("fds_at_exhaustion", fdsAtExhaustion).metric("answer_while_full_ms", answerDuringMs)
                    .metric("connections_greeted_while_full", greetedWhileFull).metric("connections_greeted_after_release", greetedAfter)
                    .metric("connect_failed", connectFailed).metric("daemon_cpu_cores_while_full", Math.round(cpuWhileFull * 100) / 100.0)
                    .metric("daemon_cpu_cores_while_full_outside_jit", Math.round(ownCpuWhileFull * 100) / 100.0)
                    .metric("internal_errors", internal);
            if (firstRefusal != null) r.notes.add("adv-fd-exhaustion, first refusal " + firstRefusal);
            if (refusals.isEmpty()) r.violation("export.create never failed: the fd table did not run out (" + created + " exports)");
            if (internal > 0) r.violation(internal + " export.create answered -32603 (internal error) when out of fds");
            // the daemon's own dup failing is -32005 data.limit fds (the limits contract); the kernel refusing to make
            // the dma-buf for lack of an fd is its own answer, -32000 EMFILE, as every kernel refusal is
            for (String k : refusals.keySet()) {
                if (!k.equals("-32005 fds") && !k.equals("-32000 EMFILE")) {
                    r.violation("out of fds, export.create got " + k + " x" + refusals.get(k) + ", not -32005 with data.limit fds (nor the kernel's -32000 EMFILE)");
                }
            }
            if (liveAtExhaustion >= 0 && liveAtExhaustion != created) r.violation("live exports " + liveAtExhaustion + " != exports the clients got " + created + ": failed creates left exports behind");
            if (answerDuringMs > AdversarialRun.ANSWER_LIMIT_MS) r.violation("server.info on an existing connection took " + answerDuringMs + " ms while out of fds");
            // measured without the JIT compiler threads: right after the export burst C2 may still be compiling what it
            // made hot (up to half a core for a second, seen on 2 CPUs), which is not the daemon spinning
            if (ownCpuWhileFull > 0.5) r.violation(String.format("the daemon's threads burnt %.2f cores (JIT compilers not counted; %.2f with them) while connections waited for fds (an accept busy loop?)", ownCpuWhileFull, cpuWhileFull));
            r.metric("sent", String.format("2 connections pipelined export.create (16 at a time) until 64 refusals in a row; then 32 new connections; under nofile %d", nofile));
            r.metric("daemon_did", String.format("%,d exports then refusals %s; %d fds; existing connection answered in %d ms; %d/%d new connections greeted while full, %d after; %.2f cores while full",
                    created, refusals, fdsAtExhaustion, answerDuringMs, greetedWhileFull, pending.size(), greetedAfter, cpuWhileFull));
            if (!run.daemon.process.isAlive()) {
                r.violation("the daemon died when out of fds; log:\n" + Scenarios.tail(run.daemon.logText()));
            } else {
                run.after();
                if (!(r.metrics.get("exports_left") instanceof Long)) r.metric("exports_left", leftSeenByKeeper + " (asked on a kept connection)");
            }
        }
        return r;
    }

    // ---- 10. output flood ------------------------------------------------------------------------------------------------

    Result outputFlood() throws Exception {
        int maxBatch = 1024;
        int bigN = (MAX_LINE - 1) / 2;
        Result r = new Result("adv-output-flood", "clients send batches of 1 and never read: lines of a " + bigN + "-element batch (one line each up to the line limit) and lines of "
                + maxBatch + " (max_batch); bounded RSS, batch > max_batch refused with one -32600, a batch over 253 fds refused, nothing executed");
        JsonObject policy = new JsonObject().put(BATCH, maxBatch).put(OUTPUT, 1 << 20).put(REQS_IN_FLIGHT, 1024).put(PER_CLIENT, 4096).put(FDS_IN_FLIGHT, 1024);
        r.param(BATCH, maxBatch).param("big_batch_lines", size.bigBatchLines()).param("max_batch_lines", size.maxBatchLines()).param("time_ms", size.floodMillis());
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy)) {
            run.baseline();
            byte[] big = ("[" + "1,".repeat(bigN - 1) + "1]\n").getBytes(StandardCharsets.UTF_8);
            byte[] atMax = ("[" + "1,".repeat(maxBatch - 1) + "1]\n").getBytes(StandardCharsets.UTF_8);
            RawConn a = greeted(run.socket()), b = greeted(run.socket());
            try {
                long[] sentA = new long[2], sentB = new long[2];   // lines, and 1 if the daemon stopped reading
                Thread ta = new Thread(() -> floodLines(a, big, size.bigBatchLines(), size.floodMillis(), sentA), "flood-big");
                Thread tb = new Thread(() -> floodLines(b, atMax, size.maxBatchLines(), size.floodMillis(), sentB), "flood-max");
                long t0 = System.nanoTime();
                ta.start();
                tb.start();
                ta.join();
                tb.join();
                long floodMs = (System.nanoTime() - t0) / 1_000_000;
                long rssFlooded = AdversarialRun.mib(ProcSampler.rssKib(run.daemon.pid));
                // what the big batches got: one -32600 each, not an array of errors
                String bigAnswer;
                String l = a.readLine(5_000);
                if (l == null) bigAnswer = "nothing (" + a.lastEnd() + ")";
                else if (l.startsWith("[")) bigAnswer = "an array of " + ((JsonArray) Json.decodeValue(l)).size() + " answers (" + l.length() + " bytes)";
                else bigAnswer = "error " + code(object(l));
                if (l == null || code(object(l)) != -32600) r.violation("a batch of " + bigN + " (> max_batch " + maxBatch + ") got " + bigAnswer + ", not one -32600");
                String l2 = b.readLine(5_000);
                String maxAnswer = l2 == null ? "nothing (" + b.lastEnd() + ")" : l2.startsWith("[") ? "an array of " + ((JsonArray) Json.decodeValue(l2)).size() + " errors" : "error " + code(object(l2));
                r.metric("flood_ms", floodMs).metric("big_batch_lines_sent", sentA[0]).metric("big_batch_daemon_stopped_reading", sentA[1] == 1)
                        .metric("max_batch_lines_sent", sentB[0]).metric("max_batch_daemon_stopped_reading", sentB[1] == 1)
                        .metric("rss_flooded_mib", rssFlooded).metric("big_batch_answer", bigAnswer).metric("max_batch_answer", maxAnswer);
                r.metric("sent", String.format("%,d lines of a %,d-element batch of 1 (%,d bytes each) and %,d lines of a %,d-element batch, none read, in %.1f s",
                        sentA[0], bigN, big.length, sentB[0], maxBatch, floodMs / 1000.0));
                r.metric("daemon_did", String.format("big batch answered with %s; max_batch batch with %s; %s / %s reading the flooders",
                        bigAnswer, maxAnswer, sentA[1] == 1 ? "stopped" : "kept", sentB[1] == 1 ? "stopped" : "kept"));
            } finally {
                a.close();
                b.close();
            }
            batchLimits(run, maxBatch, r);
            run.after();
        }
        return r;
    }

    /** Sends {@code line} up to {@code n} times within {@code ms}, never reading; out[0] lines sent, out[1] 1 if the daemon stopped reading. */
    private static void floodLines(RawConn c, byte[] line, int n, long ms, long[] out) {
        long end = System.nanoTime() + ms * 1_000_000;
        try {
            while (out[0] < n && System.nanoTime() < end) {
                int k = c.send(line, 1_500);
                if (k < line.length) {
                    out[1] = 1;   // the socket stayed full for 1.5 s: the daemon is not reading this connection
                    return;
                }
                out[0]++;
            }
        } catch (IOException e) {
            out[1] = 2;
        }
    }

    /** A batch of max_batch+1 and a batch of 254 export.create: each one -32600, nothing executed, the connection goes on. */
    private void batchLimits(AdversarialRun run, int maxBatch, Result r) throws Exception {
        long g0 = System.nanoTime();
        RawConn c = greeted(run.socket(), 30_000);
        long greetMs = (System.nanoTime() - g0) / 1_000_000;
        r.metric("greeting_after_flood_ms", greetMs);
        if (greetMs > AdversarialRun.ANSWER_LIMIT_MS) r.violation("a new connection waited " + greetMs + " ms for its greeting after the flooders stopped");
        try {
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i <= maxBatch; i++) sb.append(i == 0 ? "" : ",").append(request(i, "server.info", null).trim());
            c.send(sb.append("]\n").toString(), 5_000);
            String l = c.readLine(5_000);
            String over = l == null ? "nothing (" + c.lastEnd() + ")" : l.startsWith("[") ? "an array of " + ((JsonArray) Json.decodeValue(l)).size() : "error " + code(object(l));
            if (l == null || code(object(l)) != -32600) r.violation("a batch of " + (maxBatch + 1) + " server.info got " + over + ", not one -32600");
            sb = new StringBuilder("[");
            for (int i = 0; i < 254; i++) sb.append(i == 0 ? "" : ",").append(String.format(CREATE, i).trim());
            c.send(sb.append("]\n").toString(), 5_000);
            String l2 = c.readLine(5_000);
            String fds = l2 == null ? "nothing (" + c.lastEnd() + ")" : l2.startsWith("[") ? "an array of " + ((JsonArray) Json.decodeValue(l2)).size() + " with " + c.fdsReceived + " fds" : "error " + code(object(l2));
            if (l2 == null || code(object(l2)) != -32600) r.violation("a batch of 254 export.create (over 253 fds) got " + fds + ", not one -32600");
            r.metric("batch_over_max_answer", over).metric("batch_254_fds_answer", fds);
            String l3;
            try {
                c.send("{\"jsonrpc\":\"2.0\",\"id\":\"after\",\"method\":\"server.info\"}\n", 2_000);
                l3 = c.readLine(2_000);
            } catch (RawConn.PeerGone e) {
                l3 = null;
            }
            JsonObject info = object(l3);
            if (info == null) {
                r.violation("after the batch limits the connection did not go on (" + (l3 == null ? c.lastEnd() : cut(l3, 200)) + ")");
                r.metric("connection_after_254_batch", "closed by the daemon");
                return;
            }
            long exports = info.getValue("result") instanceof JsonObject res ? res.getLong("exports") : -1;
            if (exports != 0) r.violation("the refused batch of 254 export.create left " + exports + " exports");
            r.metric("exports_after_254_batch", exports);
        } catch (RawConn.PeerGone e) {
            r.violation("the daemon closed the connection during the batch limits: " + e.getMessage());
        } finally {
            c.close();
        }
    }

    // ---- 11. SIGTERM with stalled clients ----------------------------------------------------------------------------------

    Result sigtermStalled() throws Exception {
        int stalledN = size.termStalled(), normalN = size.termNormal();
        Result r = new Result("adv-sigterm-stalled", stalledN + " clients that stopped reading (output queued) and " + normalN
                + " normal clients with requests in flight: after SIGTERM the daemon exits within 2 s; the normal clients get answers or -32007, then EOF");
        r.param("stalled", stalledN).param("normal", normalN);
        JsonObject policy = new JsonObject().put(OUTPUT, 1 << 20).put(BATCH, 1024);
        try (AdversarialRun run = new AdversarialRun(r, home, work, policy)) {
            run.baseline();
            byte[] atMax = ("[" + "1,".repeat(1023) + "1]\n").getBytes(StandardCharsets.UTF_8);
            List<RawConn> stalled = new ArrayList<>();
            List<NormalClient> normal = new ArrayList<>();
            try {
                long queued = 0;
                List<long[]> outs = new ArrayList<>();
                List<Thread> floods = new ArrayList<>();
                for (int i = 0; i < stalledN; i++) stalled.add(greeted(run.socket()));   // all connected before any floods
                for (int i = 0; i < stalledN; i++) {
                    RawConn c = stalled.get(i);
                    long[] out = new long[2];
                    outs.add(out);
                    Thread t = new Thread(() -> floodLines(c, atMax, 200, 3_000, out), "stalled-" + i);
                    floods.add(t);
                    t.start();
                }
                for (Thread t : floods) t.join();
                for (long[] out : outs) queued += out[0];
                long greetMax = 0;
                for (int i = 0; i < normalN; i++) {
                    long g0 = System.nanoTime();
                    normal.add(new NormalClient(greeted(run.socket(), 30_000), i));
                    greetMax = Math.max(greetMax, (System.nanoTime() - g0) / 1_000_000);
                }
                r.metric("normal_greeting_max_ms", greetMax);
                if (greetMax > AdversarialRun.ANSWER_LIMIT_MS) r.violation("a new connection waited " + greetMax + " ms for its greeting while the stalled clients' output was queued");
                for (NormalClient n : normal) n.start();
                for (NormalClient n : normal) n.awaitRoundTrips(10, 10_000);
                long growth = run.stopSampling();
                if (growth > AdversarialRun.RSS_GROWTH_LIMIT_MIB) {
                    r.violation("daemon RSS grew by " + growth + " MiB with the stalled clients' output queued, over the bound of " + AdversarialRun.RSS_GROWTH_LIMIT_MIB + " MiB");
                }
                long t0 = System.nanoTime();
                for (NormalClient n : normal) n.sigtermAt = t0;
                run.daemon.process.destroy();   // SIGTERM
                boolean exited = run.daemon.process.waitFor(30, TimeUnit.SECONDS);
                long exitMs = (System.nanoTime() - t0) / 1_000_000;
                if (!exited) run.daemon.process.destroyForcibly().waitFor();
                int rc = run.daemon.process.exitValue();
                for (NormalClient n : normal) n.join(10_000);
                TreeMap<String, Integer> normalEnds = new TreeMap<>(), stalledEnds = new TreeMap<>();
                long answered = 0, refused = 0, otherErrors = 0, unanswered = 0;
                for (NormalClient n : normal) {
                    normalEnds.merge(String.valueOf(n.end), 1, Integer::sum);
                    answered += n.answeredAfter;
                    refused += n.refusedAfter;
                    otherErrors += n.otherAfter;
                    unanswered += n.unanswered;
                    if (n.error != null) r.violation("normal client " + n.index + ": " + n.error);
                }
                long stalledLines = 0;
                for (RawConn c : stalled) {
                    RawConn.Drained d = c.drain(3_000);
                    stalledLines += d.lines();
                    stalledEnds.merge(String.valueOf(d.end()), 1, Integer::sum);
                }
                r.metric("exit_ms", exitMs).metric("exit_status", exited ? rc : -1).metric("stalled_batches_queued", queued)
                        .metric("normal_answers_after_sigterm", answered).metric("normal_32007_after_sigterm", refused)
                        .metric("normal_other_errors_after_sigterm", otherErrors).metric("normal_unanswered", unanswered)
                        .metric("normal_ends", normalEnds.toString()).metric("stalled_lines_read_after", stalledLines).metric("stalled_ends", stalledEnds.toString())
                        .metric("socket_removed", !Files.exists(run.socket()));
                if (!exited || exitMs > 2_000) r.violation("the daemon took " + (exited ? exitMs + " ms" : "over 30 s (killed)") + " to exit after SIGTERM (bound 2 s)");
                if (exited && rc != 0) r.violation("exit status " + rc + " after SIGTERM");
                if (internalAfter(normal) > 0) r.violation(internalAfter(normal) + " answers after SIGTERM were internal errors (-32603)");
                for (var e : normalEnds.entrySet()) {
                    if (!e.getKey().equals("EOF")) r.violation(e.getValue() + " normal clients ended with " + e.getKey() + ", not EOF");
                }
                r.metric("sent", String.format("%d clients queued %,d batches of 1024 errors unread; %d clients pipelining export.create/device.get/export.release; then SIGTERM",
                        stalledN, queued, normalN));
                r.metric("daemon_did", String.format("exited %s in %,d ms; normal clients: %d answers, %d -32007, %d other, %d unanswered, ended %s; stalled ended %s",
                        exited ? "(status " + rc + ")" : "(killed)", exitMs, answered, refused, otherErrors, unanswered, normalEnds, stalledEnds));
            } finally {
                for (NormalClient n : normal) n.conn.close();
                for (RawConn c : stalled) c.close();
            }
        }
        return r;
    }

    private static long internalAfter(List<NormalClient> normal) {
        long n = 0;
        for (NormalClient c : normal) n += c.internalAfter;
        return n;
    }

    /**
     * A client that keeps two requests in flight (export.create and device.get, then the release) until the daemon
     * says it is stopping (-32007) or the stream ends; what it got after {@link #sigtermAt} is counted.
     */
    private static final class NormalClient extends Thread {
        final RawConn conn;
        final int index;
        volatile long sigtermAt = Long.MAX_VALUE;
        volatile RawConn.End end;
        volatile String error;
        long answeredAfter, refusedAfter, otherAfter, internalAfter, unanswered;
        private final AtomicLong roundTrips = new AtomicLong();

        NormalClient(RawConn conn, int index) {
            super("normal-" + index);
            this.conn = conn;
            this.index = index;
        }

        void awaitRoundTrips(long n, long ms) throws InterruptedException {
            long deadline = System.currentTimeMillis() + ms;
            while (roundTrips.get() < n && System.currentTimeMillis() < deadline) Thread.sleep(10);
        }

        @Override
        public void run() {
            long id = 0, inFlight = 0;
            boolean stopping = false;
            String pendingRelease = null;
            try {
                while (true) {
                    if (!stopping) {
                        StringBuilder sb = new StringBuilder();
                        if (pendingRelease != null) {
                            sb.append(request(++id, "export.release", "{\"export_id\":\"" + pendingRelease + "\"}"));
                            pendingRelease = null;
                            inFlight++;
                        }
                        sb.append(String.format(CREATE, ++id)).append(request(++id, "device.get", "{\"device\":\"" + DEV + "\"}"));
                        inFlight += 2;
                        try {
                            conn.send(sb.toString(), 2_000);
                        } catch (RawConn.PeerGone e) {
                            stopping = true;   // the daemon is gone for writing: read what is left
                        }
                    }
                    while (inFlight > 0) {
                        String l = conn.readLine(5_000);
                        if (l == null) {
                            end = conn.lastEnd();
                            unanswered = inFlight;
                            return;
                        }
                        JsonObject o = object(l);
                        if (o == null || !o.containsKey("id")) continue;   // a notification
                        inFlight--;
                        roundTrips.incrementAndGet();
                        boolean after = System.nanoTime() >= sigtermAt;
                        int code = code(o);
                        if (code == 0) {
                            if (after) answeredAfter++;
                            if (o.getValue("result") instanceof JsonObject res && res.getValue("export_id") instanceof String x && !res.containsKey("released")) pendingRelease = x;
                        } else if (code == -32007) {
                            refusedAfter++;
                            stopping = true;
                        } else if (after) {
                            otherAfter++;
                            if (code == ErrorCode.INTERNAL_ERROR.code) internalAfter++;
                        } else {
                            error = "error before SIGTERM: " + cut(l, 200);
                        }
                    }
                    if (stopping) {
                        String l = conn.readLine(5_000);
                        while (l != null) l = conn.readLine(5_000);
                        end = conn.lastEnd();
                        return;
                    }
                }
            } catch (IOException e) {
                error = e.toString();
            }
        }
    }
}

package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeMap;

/**
 * One adversarial scenario's daemon and the checks every scenario ends with: the daemon answers a fresh
 * {@code server.info} within 2 s, its fd count is back at its baseline, no export is left, its RSS grew by no more
 * than {@link #RSS_GROWTH_LIMIT_MIB} at its peak, it exits 0 on SIGTERM and its log has no internal error.
 */
final class AdversarialRun implements AutoCloseable {
    /** The daemon must answer a fresh connection's server.info within this after each scenario. */
    static final long ANSWER_LIMIT_MS = 2_000;
    /**
     * Peak RSS over the scenario minus RSS at its start. The daemon runs with default JVM flags (as
     * bin/vfio-exportd), so the heap may grow into its initial size (1/64 of RAM) under any load without a leak;
     * 256 MiB covers that on the CI machine, while the unbounded buffering this suite hunts took 1.4 GB.
     */
    static final long RSS_GROWTH_LIMIT_MIB = 256;
    /** How long closes may take to show in the daemon's fd table and export count after the clients went away. */
    static final long SETTLE_MS = 10_000;

    final Result result;
    final DaemonProc daemon;
    long fdsBefore;
    long rssBeforeKib;
    private ProcSampler sampler;
    private double cpu0;
    private long t0;
    private final long tStart = System.nanoTime();
    private TreeMap<String, Integer> kindsBefore;
    /** Log lines that this scenario provokes on purpose and that are not a failure (e.g. EMFILE warnings). */
    private final List<String> expectedLogNoise;

    AdversarialRun(Result result, Path home, Path work, JsonObject policy, JsonObject topLevel, List<String> wrapper,
                   List<String> expectedLogNoise) throws Exception {
        this.result = result;
        this.expectedLogNoise = expectedLogNoise;
        this.daemon = DaemonProc.start(home, work.resolve(result.name), "message-order", policy, topLevel, wrapper, List.of());
        result.param("policy", policy.encode());
        if (!topLevel.isEmpty()) result.param("config", topLevel.encode());
        if (!wrapper.isEmpty()) result.param("daemon_wrapper", String.join(" ", wrapper));
    }

    AdversarialRun(Result result, Path home, Path work, JsonObject policy) throws Exception {
        this(result, home, work, policy, new JsonObject(), List.of(), List.of());
    }

    Path socket() {
        return daemon.socket;
    }

    /**
     * Warms the paths the scenario will take (exports, errors, a batch), waits for the fd table to settle, then
     * records the baseline and starts the peak sampling.
     */
    void baseline() throws Exception {
        try (VfioExportClient c = VfioExportClient.connect(daemon.socket)) {
            for (int i = 0; i < 20; i++) {
                var b = c.export(Scenarios.DEV, 0, 0, 4096);
                b.fd().close();
                c.request("export.release", new JsonObject().put("export_id", b.id()));
            }
            c.sendLine("{not json");
            c.read(5_000);
            c.batch(new io.vertx.core.json.JsonArray().add(1).add(new JsonObject().put("jsonrpc", "2.0").put("id", 1).put("method", "server.info")));
        }
        awaitExports(0, SETTLE_MS);
        fdsBefore = settledFds(daemon.fdCount(), 3_000);
        kindsBefore = daemon.fdKinds();
        rssBeforeKib = ProcSampler.rssKib(daemon.pid);
        result.metric("fds_before", fdsBefore);
        result.metric("rss_before_mib", mib(rssBeforeKib));
        sampler = ProcSampler.start(daemon.pid);
        cpu0 = Scenarios.cpuSeconds(daemon.pid);
        t0 = System.nanoTime();
        result.metric("setup_ms", (t0 - tStart) / 1_000_000);
    }

    /** The fd count once two samples 100 ms apart agree (bounded by {@code ms}). */
    private long settledFds(long first, long ms) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        long prev = first;
        while (System.currentTimeMillis() < deadline) {
            Thread.sleep(100);
            long now = daemon.fdCount();
            if (now == prev) return now;
            prev = now;
        }
        return prev;
    }

    boolean awaitExports(long n, long ms) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < deadline) {
            if (daemon.info().getLong("exports") == n) return true;
            Thread.sleep(20);
        }
        return false;
    }

    /** Live exports now (a fresh connection's server.info). */
    long exports() throws IOException {
        return daemon.info().getLong("exports");
    }

    /** The daemon's CPU seconds since {@link #baseline}. */
    double cpuSoFar() {
        return Scenarios.cpuSeconds(daemon.pid) - cpu0;
    }

    /** The daemon's CPU seconds so far in its threads other than the JIT compilers (an absolute count: take deltas). */
    double cpuOutsideJit() {
        return Scenarios.cpuSecondsOutsideJit(daemon.pid);
    }

    /**
     * The time a fresh connection takes to be greeted and get its server.info answer, or -1 with a violation when
     * it takes longer than {@link #ANSWER_LIMIT_MS} or fails.
     */
    long answerMillis(String when) {
        long t = System.nanoTime();
        try (RawConn c = RawConn.connect(daemon.socket)) {
            String hello = c.readLine(ANSWER_LIMIT_MS);
            if (hello == null || !hello.contains("\"hello\"")) {
                result.violation(when + ": a fresh connection was not greeted within " + ANSWER_LIMIT_MS + " ms (" + (hello == null ? c.lastEnd() : hello) + ")");
                return -1;
            }
            c.send("{\"jsonrpc\":\"2.0\",\"id\":\"check\",\"method\":\"server.info\"}\n", ANSWER_LIMIT_MS);
            long left = ANSWER_LIMIT_MS - (System.nanoTime() - t) / 1_000_000;
            String line = c.readLine(Math.max(1, left));
            long ms = (System.nanoTime() - t) / 1_000_000;
            if (line == null || !line.contains("\"result\"")) {
                result.violation(when + ": server.info was not answered within " + ANSWER_LIMIT_MS + " ms (" + (line == null ? c.lastEnd() : line) + ")");
                return -1;
            }
            return ms;
        } catch (IOException e) {
            result.violation(when + ": a fresh connection failed: " + e.getMessage());
            return -1;
        }
    }

    /** The checks after the clients are gone; records the figures every scenario reports. */
    void after() throws Exception {
        double cpu = cpuSoFar();
        long tAfter = System.nanoTime();
        double secs = (tAfter - t0) / 1e9;
        result.metric("attack_ms", (tAfter - t0) / 1_000_000);
        long answer = answerMillis("after the scenario");
        result.metric("answer_after_ms", answer);
        if (answer >= 0) {
            boolean exportsGone = awaitExports(0, SETTLE_MS);
            long left = exports();
            result.metric("exports_left", left);
            if (!exportsGone) result.violation("exports left after the clients went away: " + left);
        } else {
            result.metric("exports_left", "? (no fresh connection)");   // the failed answer is the violation
        }
        long deadline = System.currentTimeMillis() + SETTLE_MS;
        long fds = daemon.fdCount();
        while (fds != fdsBefore && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
            fds = daemon.fdCount();
        }
        result.metric("fds_peak", sampler.peakFds());
        result.metric("fds_after", fds);
        if (fds != fdsBefore) {
            result.violation("daemon fds " + fds + " != baseline " + fdsBefore + "; by kind, the change: " + changed(kindsBefore, daemon.fdKinds()));
        }
        long peak = sampler.peakRssKib();
        sampler.close();
        long rssAfter = ProcSampler.rssKib(daemon.pid);
        result.metric("rss_peak_mib", mib(peak)).metric("rss_after_mib", mib(rssAfter));
        long growth = (peak - rssBeforeKib) / 1024;
        result.metric("rss_growth_mib", growth);
        if (growth > RSS_GROWTH_LIMIT_MIB) {
            result.violation("daemon RSS grew by " + growth + " MiB at its peak (" + mib(rssBeforeKib) + " -> " + mib(peak)
                    + " MiB), over the bound of " + RSS_GROWTH_LIMIT_MIB + " MiB");
        }
        result.metric("checks_ms", (System.nanoTime() - tAfter) / 1_000_000);
        result.metric("daemon_cpu_s", Math.round(cpu * 100) / 100.0);
        result.metric("daemon_cpu_cores", Math.round(cpu / Math.max(1e-3, secs) * 100) / 100.0);
    }

    /** The fd kinds whose count differs between two snapshots, with the difference ("socket: -3"). */
    static String changed(TreeMap<String, Integer> before, TreeMap<String, Integer> now) {
        TreeMap<String, Integer> diff = new TreeMap<>();
        now.forEach((k, n) -> diff.put(k, n - before.getOrDefault(k, 0)));
        before.forEach((k, n) -> diff.putIfAbsent(k, -n));
        diff.values().removeIf(d -> d == 0);
        StringBuilder sb = new StringBuilder();
        diff.forEach((k, d) -> sb.append(sb.isEmpty() ? "" : ", ").append(k).append(' ').append(d > 0 ? "+" : "").append(d));
        return sb.isEmpty() ? "none (same kinds, same counts)" : sb.toString();
    }

    static long mib(long kib) {
        return Math.round(kib / 1024.0);
    }

    /** Stops the sampling (scenarios that end with the daemon's own exit): the peak RSS growth in MiB so far. */
    long stopSampling() {
        long peak = sampler.peakRssKib();
        result.metric("rss_peak_mib", mib(peak)).metric("fds_peak", sampler.peakFds());
        sampler.close();
        long growth = (peak - rssBeforeKib) / 1024;
        result.metric("rss_growth_mib", growth);
        return growth;
    }

    @Override
    public void close() throws Exception {
        if (sampler != null) sampler.close();
        if (daemon.process.isAlive()) {
            long t = System.nanoTime();
            int rc = daemon.stop();
            result.metric("stop_ms", (System.nanoTime() - t) / 1_000_000);
            if (rc != 0) result.violation("daemon exit status " + rc + " on SIGTERM; log:\n" + Scenarios.tail(daemon.logText()));
        }
        checkLog();
        daemon.close();
    }

    /** An internal error in the log is a violation; other exception lines too unless the scenario expects them. */
    void checkLog() {
        String log = daemon.logText();
        int internal = 0, exceptions = 0;
        StringBuilder unexpected = new StringBuilder();
        for (String l : log.lines().toList()) {
            if (l.contains("internal error")) internal++;
            if (l.contains("Exception") || l.contains("Error:")) {
                exceptions++;
                boolean expected = false;
                for (String n : expectedLogNoise) if (l.contains(n)) expected = true;
                if (!expected && !l.startsWith("\tat ") && unexpected.length() < 2000) unexpected.append(l).append('\n');
            }
        }
        result.metric("log_exception_lines", exceptions);
        if (internal > 0) result.violation("daemon log reports " + internal + " internal error(s):\n" + Scenarios.tail(log));
        if (!unexpected.isEmpty()) result.violation("daemon log reports exceptions: " + unexpected.toString().strip().replace("\n", " / "));
    }
}

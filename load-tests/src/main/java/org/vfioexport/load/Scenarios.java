package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.Posix;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/** The scenarios. Each starts its own daemon, runs bounded in count and time, then checks the invariants. */
final class Scenarios {
    static final String DEV = "0000:01:00.0";   // has a reset method
    static final String DEV2 = "0000:02:00.0";
    static final List<String> DEVICES = List.of(DEV, DEV2);

    final Path home;
    final Path work;
    final Size size;
    final List<String> daemonJvmOptions;

    Scenarios(Path home, Path work, Size size, List<String> daemonJvmOptions) {
        this.home = home;
        this.work = work;
        this.size = size;
        this.daemonJvmOptions = daemonJvmOptions;
    }

    /** How big each scenario is: the smoke for CI, or the full run for RESULTS.md. */
    record Size(boolean full, int churnClients, long churnPairs, int rttCount, int fanoutExports, int fanoutSubscribers,
                int fanoutResets, int crashRounds, long mixedMillis, long maxMillis, int isolationClientsA, int isolationClientsB,
                long cpuPairs) {
        static Size smoke() {
            return new Size(false, 16, 300, 2_000, 1_000, 10, 3, 40, 2_000, 20_000, 24, 8, 200);
        }

        static Size fullRun() {
            return new Size(true, 64, 2_000, 20_000, 10_000, 100, 5, 1_000, 10_000, 120_000, 48, 16, 1_000);
        }
    }

    private static JsonObject policy(int subscriberQueue) {
        // the fan-out runs hold 10,000 exports and 100 subscribers of one uid: above the per-uid defaults
        return new JsonObject().put("max_exports_per_client", 20_000).put("subscriber_queue", subscriberQueue)
                .put("max_subscriptions_per_uid", 1024).put("max_exports_per_uid", 20_000);
    }

    /** A daemon, its watchers, and the baseline its fds and exports must return to. */
    final class Run implements AutoCloseable {
        final DaemonProc daemon;
        final List<Watcher> watchers = new ArrayList<>();
        long baselineFds;
        TreeMap<String, Integer> baselineKinds;
        final Result result;

        Run(Result result, String discipline, int subscriberQueue, List<String> extraJvm) throws Exception {
            this(result, discipline, subscriberQueue, new JsonObject(), extraJvm);
        }

        /** {@code topLevel}: configuration keys to replace (e.g. {@code audit}). */
        Run(Result result, String discipline, int subscriberQueue, JsonObject topLevel, List<String> extraJvm) throws Exception {
            this.result = result;
            List<String> jvm = new ArrayList<>(daemonJvmOptions);
            jvm.addAll(extraJvm);
            daemon = DaemonProc.start(home, work.resolve(result.name), discipline, policy(subscriberQueue), topLevel, List.of(), jvm);
            result.param("discipline", discipline);
        }

        Watcher watch(String name, boolean stalled, int slowEvery, long slowNanos) throws IOException {
            Watcher w = new Watcher(daemon.socket, name, stalled, slowEvery, slowNanos);
            watchers.add(w);
            if (baselineKinds != null) {   // joined after the baseline: its connection is one more fd
                baselineFds++;
                baselineKinds.merge("socket:", 1, Integer::sum);
            }
            return w;
        }

        /** Warms the connection paths, then records the baseline. */
        void baseline() throws Exception {
            try (VfioExportClient c = VfioExportClient.connect(daemon.socket)) {
                for (int i = 0; i < 20; i++) {
                    var b = c.export(DEV, 0, 0, 4096);
                    b.fd().close();
                    c.request("export.release", new JsonObject().put("export_id", b.id()));
                }
            }
            awaitExports(0, 10_000);
            Thread.sleep(200);
            baselineFds = daemon.fdCount();
            baselineKinds = daemon.fdKinds();
            result.metric("baseline_fds", baselineFds);
        }

        boolean awaitExports(long n, long ms) throws Exception {
            long deadline = System.currentTimeMillis() + ms;
            while (System.currentTimeMillis() < deadline) {
                if (daemon.info().getLong("exports") == n) return true;
                Thread.sleep(20);
            }
            return false;
        }

        /** The checks after the load: exports and fds back to baseline, every watcher has every event, rules hold. */
        void finish(boolean expectAllReleased) throws Exception {
            if (!awaitExports(0, 30_000)) result.violation("exports did not return to 0: " + daemon.info().getLong("exports"));
            long deadline = System.currentTimeMillis() + 20_000;
            long fds = daemon.fdCount();
            while (fds != baselineFds && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
                fds = daemon.fdCount();
            }
            result.metric("final_fds", fds);
            if (fds != baselineFds) {
                result.violation("daemon fds " + fds + " != baseline " + baselineFds + "; now " + daemon.fdKinds()
                        + ", at baseline " + baselineKinds);
            }
            for (Watcher w : watchers) w.unstall();
            Map<String, Long> heads = daemon.heads();
            result.metric("device_seq", heads.toString());
            for (int i = 0; i < watchers.size(); i++) {
                Watcher w = watchers.get(i);
                if (!w.awaitHeads(heads, 120_000)) result.violation("watcher " + i + " did not reach " + heads);
                for (String v : w.violations(expectAllReleased)) {
                    if (result.violations.size() < 50) result.violation("watcher " + i + ": " + v);
                }
            }
        }

        @Override
        public void close() throws Exception {
            for (Watcher w : watchers) w.close();
            int rc = daemon.stop();
            if (rc != 0) result.violation("daemon exit status " + rc + "; log:\n" + tail(daemon.logText()));
            String log = daemon.logText();
            if (log.contains("internal error") || log.contains("Exception")) {
                result.violation("daemon log reports errors:\n" + tail(log));
            }
            daemon.close();
        }
    }

    /** utime+stime of a process in seconds (/proc/PID/stat, USER_HZ 100). */
    static double cpuSeconds(long pid) {
        try {
            String st = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
        } catch (IOException e) {
            return Double.NaN;
        }
    }

    /**
     * CPU seconds of a process's live threads other than the JIT compilers: what its own code burns. A busy loop
     * shows here; the JIT compiling what a burst of work made hot (C2 can take half a core for a second) does not.
     */
    static double cpuSecondsOutsideJit(long pid) {
        double sum = 0;
        try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                try {
                    String st = Files.readString(t.resolve("stat"));
                    String comm = st.substring(st.indexOf('(') + 1, st.lastIndexOf(')'));
                    if (comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre")) continue;
                    String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
                    sum += (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
                } catch (IOException gone) {
                    // the thread ended between the listing and the read
                }
            }
            return sum;
        } catch (IOException e) {
            return Double.NaN;
        }
    }

    /** stime of a process in seconds (time in the kernel on its behalf). */
    static double sysSeconds(long pid) {
        try {
            String st = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[12]) / 100.0;
        } catch (IOException e) {
            return Double.NaN;
        }
    }

    /** Runs {@code c}, recording the CPU the daemon and this load generator used, and the daemon's CPU per pair. */
    static void runMeasured(Result r, Run run, Churn c) throws InterruptedException {
        runMeasured(r, run, c, () -> {});
    }

    /** {@code atStart}: runs once the clients are connected, as the clock starts. */
    static void runMeasured(Result r, Run run, Churn c, Runnable atStart) throws InterruptedException {
        double d0 = cpuSeconds(run.daemon.pid), g0 = cpuSeconds(ProcessHandle.current().pid()), s0 = sysSeconds(run.daemon.pid);
        long cs0 = ProcSampler.contextSwitches(run.daemon.pid);
        Churn.runAll(atStart, c);
        double d1 = cpuSeconds(run.daemon.pid), g1 = cpuSeconds(ProcessHandle.current().pid()), s1 = sysSeconds(run.daemon.pid);
        long cs1 = ProcSampler.contextSwitches(run.daemon.pid);
        r.metric("daemon_context_switches_per_pair", (cs1 - cs0) / (double) Math.max(1, c.pairs.get()));
        r.metric("daemon_kernel_share", (s1 - s0) / (d1 - d0));
        double secs = c.elapsedNanos / 1e9;
        r.metric("daemon_cpu_cores", (d1 - d0) / secs).metric("generator_cpu_cores", (g1 - g0) / secs);
        r.metric("daemon_cpu_us_per_pair", (d1 - d0) * 1e6 / Math.max(1, c.pairs.get()));
    }

    static String tail(String s) {
        return s.length() > 3000 ? s.substring(s.length() - 3000) : s;
    }

    private static void churnErrors(Result r, Churn c) {
        for (String e : c.errors.subList(0, Math.min(10, c.errors.size()))) r.violation(e);
        if (c.errors.size() > 10) r.violation((c.errors.size() - 10) + " more client errors");
    }

    private static void churnMetrics(Result r, Churn c, String prefix) {
        r.metric(prefix + "pairs", c.pairs.get());
        r.metric(prefix + "pairs_per_s", Math.round(c.pairsPerSecond()));
        double[] rates = c.timeline.ratesPerSecond(c.elapsedNanos);
        double sum = 0;
        for (int i = rates.length / 2; i < rates.length; i++) sum += rates[i];
        r.metric(prefix + "steady_pairs_per_s", Math.round(sum / Math.max(1, rates.length - rates.length / 2)));
        r.metric(prefix + "export_p50_us", c.exportRtt.getValueAtPercentile(50) / 1000.0);
        r.metric(prefix + "export_p99_us", c.exportRtt.getValueAtPercentile(99) / 1000.0);
        r.metric(prefix + "export_p999_us", c.exportRtt.getValueAtPercentile(99.9) / 1000.0);
        r.metric(prefix + "release_p99_us", c.releaseRtt.getValueAtPercentile(99) / 1000.0);
        r.latencies.put(prefix + "export.create", c.exportRtt);
        r.timelines.put(prefix + "pairs/s", c.timeline.ratesPerSecond(c.elapsedNanos));
    }

    // ---- 1. export/release churn -----------------------------------------------------------------------------

    Result churn(String discipline, boolean keepFds, int depth) throws Exception {
        return churn(discipline, keepFds, depth, List.of());
    }

    Result churn(String discipline, boolean keepFds, int depth, List<String> jvm) throws Exception {
        Result r = new Result("churn-" + discipline + (keepFds ? "-fds-kept" : "") + (depth > 1 ? "-depth" + depth : ""),
                "export/release churn: N clients x M pairs, clients split over the 2 devices" + (keepFds ? ", each client keeps its last " + Churn.KEEP_PER_CLIENT + " fds open (after their release)" : ", fd closed on receipt"));
        r.param("clients", size.churnClients()).param("pairs_per_client", size.churnPairs()).param("keep_fds", keepFds)
                .param("in_flight_per_client", depth);
        try (Run run = new Run(r, discipline, 4096, jvm)) {
            run.watch("all", false, 0, 0);
            run.baseline();
            Churn c = new Churn(run.daemon.socket, DEVICES, size.churnClients(), size.churnPairs(), size.maxMillis(), keepFds, depth);
            runMeasured(r, run, c);
            churnMetrics(r, c, "");
            churnErrors(r, c);
            if (c.pairs.get() == 0) r.violation("no pair completed");
            run.finish(true);
        }
        return r;
    }

    // ---- 2. reset storm during an export storm; memory flapping ------------------------------------------------

    Result storm(String discipline, boolean memory) throws Exception {
        String what = memory ? "memory on/off flapping" : "reset storm";
        Result r = new Result((memory ? "memory-flap-" : "reset-storm-") + discipline, what + " during an export/release storm"
                + (memory ? "" : " (each reset takes the device's configured reset_ms)"));
        int clients = Math.max(8, size.churnClients() / 4);
        r.param("clients", clients).param("time_ms", size.mixedMillis());
        if (!memory) r.param("reset_ms", resetMillis(DEV));
        try (Run run = new Run(r, discipline, 65_536, List.of())) {
            run.watch("all", false, 0, 0);
            run.baseline();
            Churn c = new Churn(run.daemon.socket, DEV, clients, Long.MAX_VALUE, size.mixedMillis(), false, 1);
            DeviceOpLoop storm = new DeviceOpLoop(run.daemon.socket, DEV, memory, size.mixedMillis());
            runMeasured(r, run, c, storm::start);
            storm.join();
            churnMetrics(r, c, "");
            stormMetrics(r, storm, memory);
            r.metric("revoked_at_create", c.revokedAtCreate.get());
            r.metric("busy", storm.busy.get() + c.busy.get());
            churnErrors(r, c);
            run.finish(true);
        }
        return r;
    }

    private static void stormMetrics(Result r, DeviceOpLoop storm, boolean memory) {
        String op = memory ? "set_memory" : "reset";
        r.metric(memory ? "memory_toggles" : "resets", storm.done.get());
        r.metric(op + "_p50_us", storm.latency.getValueAtPercentile(50) / 1000.0);
        r.metric(op + "_p99_us", storm.latency.getValueAtPercentile(99) / 1000.0);
        r.latencies.put(memory ? "device.set_memory" : "device.reset", storm.latency);
        for (String e : storm.errors.subList(0, Math.min(10, storm.errors.size()))) r.violation(e);
        if (storm.done.get() == 0) r.violation("no " + storm.what() + " operation succeeded");
    }

    /** The reset wait the load daemons' configuration gives {@code device} (the simulated kernel's reset_ms). */
    long resetMillis(String device) throws IOException {
        JsonObject conf = new JsonObject(Files.readString(home.resolve("conf/vfio-export.json")));
        var devices = conf.getJsonArray("devices");
        for (int i = 0; i < devices.size(); i++) {
            JsonObject d = devices.getJsonObject(i);
            if (device.equals(d.getString("id"))) return d.getLong("reset_ms", 100L);
        }
        throw new IOException(device + " is not in conf/vfio-export.json");
    }

    // ---- 2b. isolation: one device resetting must not slow the other -------------------------------------------

    /**
     * Device A reset in a loop by one client while clients churn export/release on A and on B. Under the lock
     * design every export to A parks a worker on A's read side for the length of a reset, and once the worker pool
     * is parked, exports to B wait for a worker too; under message order the waiting exports are entries in A's
     * queue and B should not notice. A short quiet phase (the same clients, no resets) comes first as B's reference.
     */
    Result isolation(String discipline) throws Exception {
        int a = size.isolationClientsA(), b = size.isolationClientsB();
        long ms = size.mixedMillis(), quietMs = ms / 2;
        long resetMs = resetMillis(DEV);
        Result r = new Result("isolation-" + discipline, "device A (" + DEV + ") reset in a loop by one client while " + a
                + " clients churn export/release on A and " + b + " on device B (" + DEV2 + "): does B notice? (quiet phase without resets first)");
        r.param("clients_a", a).param("clients_b", b).param("time_ms", ms).param("quiet_ms", quietMs).param("reset_ms", resetMs);
        if (resetMs < 50) r.violation("the load configuration's reset_ms for " + DEV + " is " + resetMs + " ms: not a realistic reset (FLR waits 100 ms)");
        try (Run run = new Run(r, discipline, 65_536, List.of())) {
            run.watch("all", false, 0, 0);
            run.baseline();
            // the JIT warms up first (as in cpu-*): the quiet phase is B's reference, not the daemon's first second
            new Churn(run.daemon.socket, DEVICES, a + b, Math.max(20, size.cpuPairs() / 10), size.maxMillis(), false, 1).run();
            Churn qa = new Churn(run.daemon.socket, DEV, a, Long.MAX_VALUE, quietMs, false, 1);
            Churn qb = new Churn(run.daemon.socket, DEV2, b, Long.MAX_VALUE, quietMs, false, 1);
            Churn.runAll(() -> {}, qa, qb);
            churnMetrics(r, qb, "b_quiet_");
            churnMetrics(r, qa, "a_quiet_");
            Churn ca = new Churn(run.daemon.socket, DEV, a, Long.MAX_VALUE, ms, false, 1);
            Churn cb = new Churn(run.daemon.socket, DEV2, b, Long.MAX_VALUE, ms, false, 1);
            DeviceOpLoop storm = new DeviceOpLoop(run.daemon.socket, DEV, false, ms);
            double[] d0 = new double[1];
            Churn.runAll(() -> {
                storm.start();
                d0[0] = cpuSeconds(run.daemon.pid);
            }, ca, cb);
            double d1 = cpuSeconds(run.daemon.pid);
            storm.join();
            churnMetrics(r, cb, "b_");
            churnMetrics(r, ca, "a_");
            stormMetrics(r, storm, false);
            r.metric("daemon_cpu_us_per_pair", (d1 - d0[0]) * 1e6 / Math.max(1, ca.pairs.get() + cb.pairs.get()));
            r.metric("b_p99_vs_quiet", cb.exportRtt.getValueAtPercentile(99) / (double) Math.max(1, qb.exportRtt.getValueAtPercentile(99)));
            r.metric("b_throughput_vs_quiet", cb.pairsPerSecond() / qb.pairsPerSecond());
            for (Churn c : List.of(qa, qb, ca, cb)) churnErrors(r, c);
            if (qb.pairs.get() == 0 || cb.pairs.get() == 0) {
                // the lock design may starve B outright (that is the measurement); message order must not
                if (discipline.equals("message-order")) r.violation("device B completed no pair " + (qb.pairs.get() == 0 ? "without" : "during") + " the resets");
                else r.notes.add("device B completed no pair " + (qb.pairs.get() == 0 ? "without" : "during") + " the resets");
            }
            run.finish(true);
        }
        return r;
    }

    // ---- 2c. CPU per pair: the daemon's, next to the C floor server's ---------------------------------------------

    /**
     * The daemon's CPU (utime+stime from /proc/PID/stat) per export+release pair under churn, with no profiler
     * attached: {@code churnClients} clients, one request in flight each, fds closed on receipt, one subscriber.
     */
    Result cpu(String discipline) throws Exception {
        return cpu(discipline, true);
    }

    /** The daemon configuration's overrides for a scenario run with or without its audit journal. */
    private static JsonObject auditConf(boolean audit) {
        return audit ? new JsonObject() : new JsonObject().put("audit", new JsonObject().put("enabled", false));
    }

    /** {@code audit} false: without the audit journal (its share of the CPU per pair). */
    Result cpu(String discipline, boolean audit) throws Exception {
        Result r = new Result("cpu-" + discipline + (audit ? "" : "-no-audit"), "daemon CPU per export+release pair (/proc/PID/stat), churn without a profiler, clients split over the 2 devices"
                + (audit ? "" : ", audit journal off"));
        r.param("clients", size.churnClients()).param("pairs_per_client", size.cpuPairs()).param("audit", audit);
        JsonObject conf = auditConf(audit);
        try (Run run = new Run(r, discipline, 4096, conf, List.of())) {
            run.watch("all", false, 0, 0);
            run.baseline();
            // a first pass warms the JIT up; only the second is measured
            new Churn(run.daemon.socket, DEVICES, size.churnClients(), Math.max(50, size.cpuPairs() / 4), size.maxMillis(), false, 1).run();
            long cs0 = ProcSampler.contextSwitches(run.daemon.pid);
            Churn c = new Churn(run.daemon.socket, DEVICES, size.churnClients(), size.cpuPairs(), size.maxMillis(), false, 1);
            runMeasured(r, run, c);
            long cs1 = ProcSampler.contextSwitches(run.daemon.pid);
            r.metric("daemon_context_switches_per_pair", (cs1 - cs0) / (double) Math.max(1, c.pairs.get()));
            churnMetrics(r, c, "");
            churnErrors(r, c);
            if (c.pairs.get() == 0) r.violation("no pair completed");
            run.finish(true);
        }
        return r;
    }

    /**
     * The C floor server's CPU per request/response with one fd, under the same number of clients as {@link #cpu}:
     * each client does two round trips per "pair" (as an export and its release), over the raw FFM client.
     */
    Result cpuFloor() throws Exception {
        Result r = new Result("cpu-floor", "C floor server's CPU per round trip with one fd (/proc/PID/stat), same clients as cpu-*, 2 round trips per pair");
        int clients = size.churnClients();
        long pairs = size.cpuPairs();
        r.param("clients", clients).param("pairs_per_client", pairs);
        Path dir = work.resolve("cpu-floor");
        Files.createDirectories(dir);
        Path sock = dir.resolve("floor.sock");
        Process server = new ProcessBuilder(home.resolve("load-tests/target/floor-server").toString(), sock.toString())
                .redirectErrorStream(true).start();
        try {
            String line = new BufferedReader(new InputStreamReader(server.getInputStream())).readLine();
            if (line == null || !line.startsWith("listening")) throw new IOException("floor-server: " + line);
            floorClients(sock, clients, Math.max(50, pairs / 4), null, () -> {});   // warm-up
            long fds0 = ProcSampler.fds(server.pid());
            Histogram h = Stats.histogram();
            // the server's threads live as long as their connections: read their counts before the clients close
            long[] cs = new long[2];
            double[] c = new double[4];
            long[] t = new long[2];
            long trips = floorClients(sock, clients, pairs, h, () -> {
                cs[0] = ProcSampler.contextSwitches(server.pid());
                c[0] = cpuSeconds(server.pid());
                c[1] = sysSeconds(server.pid());
                t[0] = System.nanoTime();
            }, () -> {
                t[1] = System.nanoTime();
                cs[1] = ProcSampler.contextSwitches(server.pid());
                c[2] = cpuSeconds(server.pid());
                c[3] = sysSeconds(server.pid());
            });
            long elapsed = t[1] - t[0];
            double c0 = c[0], s0 = c[1], c1 = c[2], s1 = c[3];
            long cs0 = cs[0], cs1 = cs[1];
            r.metric("round_trips", trips).metric("round_trips_per_s", Math.round(trips * 1e9 / elapsed));
            r.metric("floor_cpu_us_per_round_trip", (c1 - c0) * 1e6 / Math.max(1, trips));
            r.metric("floor_cpu_us_per_pair", 2 * (c1 - c0) * 1e6 / Math.max(1, trips));
            r.metric("floor_kernel_share", (s1 - s0) / (c1 - c0));
            r.metric("floor_context_switches_per_round_trip", (cs1 - cs0) / (double) Math.max(1, trips));
            r.metric("p50_us", h.getValueAtPercentile(50) / 1000.0).metric("p99_us", h.getValueAtPercentile(99) / 1000.0)
                    .metric("p999_us", h.getValueAtPercentile(99.9) / 1000.0);
            r.latencies.put("floor round trip under load", h);
            if (trips != 2L * clients * pairs) r.violation("round trips " + trips + " != " + 2L * clients * pairs);
            // the server's per-connection threads close their sockets when the clients do
            long deadline = System.currentTimeMillis() + 10_000;
            long fds = ProcSampler.fds(server.pid());
            // a leak is more fds than at the start; the start may have caught one transient fd (the readiness
            // probe's connection, closed by the server a moment later), so fewer is not a violation
            while (fds > fds0 && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
                fds = ProcSampler.fds(server.pid());
            }
            if (fds > fds0) r.violation("floor server fds " + fds + " > " + fds0 + " after its clients left");
        } finally {
            server.destroy();
            server.waitFor();
        }
        return r;
    }

    private static long floorClients(Path sock, int clients, long pairs, Histogram into, Runnable measured) throws Exception {
        return floorClients(sock, clients, pairs, into, () -> {}, measured);
    }

    /**
     * {@code clients} threads, each on its own connection doing 2 x {@code pairs} round trips; returns how many were
     * done. {@code connected} runs once every client is connected and none has started, {@code measured} once all
     * are done and none has closed yet.
     */
    private static long floorClients(Path sock, int clients, long pairs, Histogram into, Runnable connected, Runnable measured) throws Exception {
        AtomicLong trips = new AtomicLong();
        List<String> errors = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> ts = new ArrayList<>();
        java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(clients, connected);
        java.util.concurrent.CyclicBarrier end = new java.util.concurrent.CyclicBarrier(clients, measured);
        byte[] req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":0,\"length\":4096}}\n"
                .getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < clients; i++) {
            Thread t = new Thread(() -> {
                Histogram h = Stats.histogram();
                try {
                    int fd = Posix.connectUnix(sock.toString());
                    byte[] rx = new byte[4096];
                    StringBuilder pending = new StringBuilder();
                    try {
                        start.await(60, TimeUnit.SECONDS);
                        for (long k = 0; k < 2 * pairs; k++) {
                            long t0 = System.nanoTime();
                            Posix.sendWithFds(fd, req, 0, req.length, new int[0], 0);
                            readLine(fd, rx, pending);
                            h.recordValue(System.nanoTime() - t0);
                            trips.incrementAndGet();
                        }
                        end.await(60, TimeUnit.SECONDS);
                    } finally {
                        Posix.close(fd);
                    }
                } catch (Exception e) {
                    errors.add(e.toString());
                    start.reset();   // the others must not wait for this one
                    end.reset();
                }
                if (into != null) {
                    synchronized (into) {
                        into.add(h);
                    }
                }
            }, "floor-client-" + i);
            ts.add(t);
            t.start();
        }
        for (Thread t : ts) t.join();
        if (!errors.isEmpty()) throw new IOException("floor clients: " + errors.subList(0, Math.min(3, errors.size())));
        return trips.get();
    }

    // ---- 3. fan-out ----------------------------------------------------------------------------------------

    Result fanout() throws Exception {
        return fanout(List.of());
    }

    Result fanout(List<String> jvm) throws Exception {
        int exports = size.fanoutExports(), subs = size.fanoutSubscribers(), resets = size.fanoutResets();
        Result r = new Result("fanout", exports + " live exports, " + subs + " subscribers, one reset at a time: time until every subscriber has every event");
        r.param("live_exports", exports).param("subscribers", subs).param("resets", resets);
        try (Run run = new Run(r, "message-order", 4 * exports + 1024, jvm)) {
            for (int i = 0; i < subs; i++) run.watch("s" + i, false, 0, 0);
            run.baseline();
            int holders = 10;
            List<VfioExportClient> owners = new ArrayList<>();
            for (int h = 0; h < holders; h++) owners.add(VfioExportClient.connect(run.daemon.socket));
            createMany(owners, exports);
            r.metric("exports_live", run.daemon.info().getLong("exports"));
            Histogram all = Stats.histogram(), resp = Stats.histogram();
            double d0 = cpuSeconds(run.daemon.pid), g0 = cpuSeconds(ProcessHandle.current().pid());
            try (VfioExportClient ctl = VfioExportClient.connect(run.daemon.socket)) {
                for (int k = 0; k < resets; k++) {
                    long t0 = System.nanoTime();
                    JsonObject res = ctl.request("device.reset", new JsonObject().put("device", DEV));
                    resp.recordValue(System.nanoTime() - t0);
                    if (res.getLong("revoked") != exports) r.violation("reset " + k + " revoked " + res.getLong("revoked"));
                    long head = ctl.request("device.get", new JsonObject().put("device", DEV)).getLong("seq");
                    long last = 0;
                    for (Watcher w : run.watchers) {
                        if (!w.awaitHeads(Map.of(DEV, head), 120_000)) {
                            r.violation("subscriber did not get seq " + head);
                            continue;
                        }
                        Long at = w.stateArrivals.getOrDefault(DEV, Map.of()).get(head);
                        if (at == null) r.violation("the reset's last event (seq " + head + ") is not a device.state");
                        else last = Math.max(last, at);
                    }
                    all.recordValue(Math.max(0, last - t0));
                }
            }
            double d1 = cpuSeconds(run.daemon.pid), g1 = cpuSeconds(ProcessHandle.current().pid());
            r.metric("daemon_cpu_s_per_reset", (d1 - d0) / resets).metric("generator_cpu_s_per_reset", (g1 - g0) / resets);
            r.metric("daemon_cpu_us_per_delivery", (d1 - d0) * 1e6 / resets / ((2.0 * exports + 2) * subs));
            long lost = 0;
            for (Watcher w : run.watchers) lost += w.lostEvents();
            r.metric("events_per_reset", 2L * exports + 2);
            r.metric("deliveries_per_reset", (2L * exports + 2) * subs);
            r.metric("events_lost", lost);
            if (lost > 0) r.violation(lost + " events lost: every event must be delivered");
            r.metric("reset_response_p50_ms", resp.getValueAtPercentile(50) / 1e6);
            r.metric("all_delivered_p50_ms", all.getValueAtPercentile(50) / 1e6);
            r.metric("all_delivered_p99_ms", all.getValueAtPercentile(99) / 1e6);
            r.metric("all_delivered_max_ms", all.getMaxValue() / 1e6);
            r.latencies.put("reset: all subscribers have all events", all);
            r.latencies.put("reset: response", resp);
            for (VfioExportClient o : owners) o.close();
            run.finish(true);
        }
        return r;
    }

    /** Creates {@code n} exports spread over {@code owners}, pipelined, closing the client-side fds. */
    private static void createMany(List<VfioExportClient> owners, int n) throws Exception {
        int per = (n + owners.size() - 1) / owners.size();
        int made = 0;
        JsonObject p = new JsonObject().put("device", DEV).put("region", 0).put("offset", 0).put("length", 4096);
        for (VfioExportClient c : owners) {
            int mine = Math.min(per, n - made);
            for (int done = 0; done < mine; ) {
                int k = Math.min(64, mine - done);
                Object[] ids = new Object[k];
                for (int i = 0; i < k; i++) ids[i] = c.send("export.create", p);
                for (int i = 0; i < k; i++) {
                    var m = c.await(ids[i]);
                    if (m.object().containsKey("error")) throw new IOException("export.create: " + m.object().encode());
                    for (Fd fd : m.fds()) fd.close();
                }
                done += k;
            }
            made += mine;
        }
    }

    // ---- 4. slow and stalled subscribers -------------------------------------------------------------------------

    Result slowSubscribers() throws Exception {
        Result r = new Result("slow-subscribers", "churn with a normal subscriber, then again with a stalled one and a slow one added: the stalled/slow get events.lost, the devices do not slow down");
        int clients = Math.max(8, size.churnClients() / 4);
        long pairs = size.full() ? 2_000 : 1_000;
        r.param("clients", clients).param("pairs_per_client", pairs).param("subscriber_queue", 1024);
        try (Run run = new Run(r, "message-order", 1024, List.of())) {
            Watcher normal = run.watch("normal", false, 0, 0);
            run.baseline();
            Churn a = new Churn(run.daemon.socket, DEV, clients, pairs, size.maxMillis(), false, 1).run();
            Watcher stalled = run.watch("stalled", true, 0, 0);
            Watcher slow = run.watch("slow", false, 20, 1_000_000);
            Churn b = new Churn(run.daemon.socket, DEV, clients, pairs, size.maxMillis(), false, 1).run();
            churnMetrics(r, a, "alone_");
            churnMetrics(r, b, "with_stalled_");
            double ratio = b.pairsPerSecond() / a.pairsPerSecond();
            r.metric("throughput_ratio_with_stalled", ratio);
            churnErrors(r, a);
            churnErrors(r, b);
            Thread.sleep(300);
            stalled.unstall();
            run.finish(true);
            r.metric("stalled_lost_notices", stalled.lostNotices()).metric("stalled_lost_events", stalled.lostEvents());
            r.metric("slow_lost_notices", slow.lostNotices()).metric("slow_lost_events", slow.lostEvents());
            r.metric("normal_lost_events", normal.lostEvents());
            if (stalled.lostNotices() == 0) r.violation("the stalled subscriber got no events.lost");
            if (ratio < 0.5) r.violation("a stalled subscriber slowed the device: throughput ratio " + ratio);
        }
        return r;
    }

    // ---- 5. client crashes ------------------------------------------------------------------------------------------

    Result crashes() throws Exception {
        int rounds = size.crashRounds();
        int parallel = 4;
        Result r = new Result("client-crashes", "client processes (python3) killed with SIGKILL mid-export");
        r.param("rounds", rounds).param("parallel", parallel);
        Path script = home.resolve("load-tests/crash-client.py");
        try (Run run = new Run(r, "message-order", 65_536, List.of())) {
            Watcher w = run.watch("all", false, 0, 0);
            run.baseline();
            long seq0 = run.daemon.heads().get(DEV);
            AtomicInteger next = new AtomicInteger();
            List<String> errors = new ArrayList<>();
            List<Thread> ts = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int p = 0; p < parallel; p++) {
                Thread t = new Thread(() -> {
                    try {
                        while (next.getAndIncrement() < rounds) {
                            Process child = new ProcessBuilder("python3", script.toString(), run.daemon.socket.toString(), DEV)
                                    .redirectErrorStream(true).start();
                            BufferedReader in = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
                            String go = in.readLine();
                            if (!"go".equals(go)) {
                                errors.add("child said " + go);
                            }
                            // the child is exporting by now or within the next few ms: kill it at a random point
                            java.util.concurrent.locks.LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(0, 8_000_000));
                            child.destroyForcibly();   // SIGKILL
                            child.waitFor(10, TimeUnit.SECONDS);
                        }
                    } catch (Exception e) {
                        errors.add(e.toString());
                    }
                }, "crasher-" + p);
                ts.add(t);
                t.start();
            }
            for (Thread t : ts) t.join();
            r.metric("wall_s", (System.nanoTime() - t0) / 1e9);
            for (String e : errors.subList(0, Math.min(10, errors.size()))) r.violation(e);
            run.finish(true);
            long events = run.daemon.heads().get(DEV) - seq0;
            r.metric("exports_created_and_released", events / 2);
            if (events == 0) r.violation("the killed clients created no export");
        }
        return r;
    }

    // ---- baselines: the physical floor and the export round trip ---------------------------------------------------

    /** The raw floor: one sendmsg/recvmsg request/response with an fd, against the C floor server. */
    Result floor() throws Exception {
        Result r = new Result("floor", "raw Unix-socket request/response carrying one fd (C server, Java FFM client, no framework)");
        int n = size.rttCount();
        r.param("round_trips", n);
        Path dir = work.resolve("floor");
        Files.createDirectories(dir);
        Path sock = dir.resolve("floor.sock");
        Process server = new ProcessBuilder(home.resolve("load-tests/target/floor-server").toString(), sock.toString())
                .redirectErrorStream(true).start();
        try {
            String line = new BufferedReader(new InputStreamReader(server.getInputStream())).readLine();
            if (line == null || !line.startsWith("listening")) throw new IOException("floor-server: " + line);
            int fd = Posix.connectUnix(sock.toString());
            byte[] req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":0,\"length\":4096}}\n"
                    .getBytes(StandardCharsets.UTF_8);
            Histogram h = Stats.histogram();
            byte[] rx = new byte[4096];   // as the export round trip's: recvWithFds allocates this much native memory per call
            for (int i = 0; i < n + n / 5; i++) {   // the first sixth warms up
                long t0 = System.nanoTime();
                Posix.sendWithFds(fd, req, 0, req.length, new int[0], 0);
                int got = 0;
                boolean nl = false;
                while (!nl) {
                    Posix.Received rec = Posix.recvWithFds(fd, rx, 4);
                    for (int f : rec.fds()) Posix.close(f);
                    got += rec.length();
                    for (int j = 0; j < rec.length(); j++) if (rx[j] == '\n') nl = true;
                    if (rec.length() == 0) throw new IOException("floor-server closed");
                }
                if (i >= n / 5) h.recordValue(System.nanoTime() - t0);
            }
            Posix.close(fd);
            r.metric("p50_us", h.getValueAtPercentile(50) / 1000.0).metric("p99_us", h.getValueAtPercentile(99) / 1000.0)
                    .metric("p999_us", h.getValueAtPercentile(99.9) / 1000.0);
            r.latencies.put("floor round trip", h);
            Process sc = new ProcessBuilder(home.resolve("load-tests/target/syscall-floor").toString(), "100000").redirectErrorStream(true).start();
            String us = new String(sc.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            sc.waitFor();
            r.metric("sim_syscalls_us_per_pair", Double.parseDouble(us));
        } finally {
            server.destroy();
            server.waitFor();
        }
        return r;
    }

    /** The daemon's export round trip, one client, one request at a time, with a raw FFM client like the floor's. */
    Result exportRtt(String discipline) throws Exception {
        return exportRtt(discipline, true);
    }

    /** {@code audit} false: the daemon runs without its audit journal (what the answer's wait for its record costs). */
    Result exportRtt(String discipline, boolean audit) throws Exception {
        Result r = new Result("export-rtt-" + discipline + (audit ? "" : "-no-audit"), "export.create round trip with its fd, one client, sequential (raw FFM client as the floor's)"
                + (audit ? "" : ", audit journal off"));
        int n = size.rttCount();
        r.param("round_trips", n).param("audit", audit);
        JsonObject conf = auditConf(audit);
        try (Run run = new Run(r, discipline, 4096, conf, List.of())) {
            run.baseline();
            int fd = Posix.connectUnix(run.daemon.socket.toString());
            byte[] rx = new byte[4096];
            StringBuilder pending = new StringBuilder();
            readLine(fd, rx, pending); // hello
            Histogram h = Stats.histogram(), rel = Stats.histogram();
            for (int i = 0; i < n + n / 5; i++) {
                byte[] req = ("{\"jsonrpc\":\"2.0\",\"id\":" + i + ",\"method\":\"export.create\",\"params\":{\"device\":\"" + DEV
                        + "\",\"region\":0,\"offset\":0,\"length\":4096}}\n").getBytes(StandardCharsets.UTF_8);
                long t0 = System.nanoTime();
                Posix.sendWithFds(fd, req, 0, req.length, new int[0], 0);
                String line = readLine(fd, rx, pending);
                long t1 = System.nanoTime();
                int k = line.indexOf("\"export_id\":\"");
                if (k < 0) throw new IOException("export.create failed: " + line);
                String id = line.substring(k + 13, line.indexOf('"', k + 13));
                byte[] rreq = ("{\"jsonrpc\":\"2.0\",\"id\":\"r" + i + "\",\"method\":\"export.release\",\"params\":{\"export_id\":\"" + id + "\"}}\n")
                        .getBytes(StandardCharsets.UTF_8);
                long t2 = System.nanoTime();
                Posix.sendWithFds(fd, rreq, 0, rreq.length, new int[0], 0);
                String rl = readLine(fd, rx, pending);
                long t3 = System.nanoTime();
                if (!rl.contains("\"released\":true")) throw new IOException("export.release failed: " + rl);
                if (i >= n / 5) {
                    h.recordValue(t1 - t0);
                    rel.recordValue(t3 - t2);
                }
            }
            Posix.close(fd);
            r.metric("p50_us", h.getValueAtPercentile(50) / 1000.0).metric("p99_us", h.getValueAtPercentile(99) / 1000.0)
                    .metric("p999_us", h.getValueAtPercentile(99.9) / 1000.0)
                    .metric("release_p50_us", rel.getValueAtPercentile(50) / 1000.0);
            r.latencies.put("export.create round trip (" + discipline + ")", h);
            run.finish(false);
        }
        return r;
    }

    /** Reads one line (closing any fd that comes with it). */
    private static String readLine(int fd, byte[] rx, StringBuilder pending) throws Exception {
        while (true) {
            int nl = pending.indexOf("\n");
            if (nl >= 0) {
                String line = pending.substring(0, nl);
                pending.delete(0, nl + 1);
                return line;
            }
            Posix.Received rec = Posix.recvWithFds(fd, rx, 4);
            for (int f : rec.fds()) Posix.close(f);
            if (rec.length() == 0) throw new IOException("the daemon closed the connection");
            pending.append(new String(rx, 0, rec.length(), StandardCharsets.UTF_8));
        }
    }

    // ---- heap per live export ---------------------------------------------------------------------------------------

    Result heap() throws Exception {
        int n = size.full() ? 10_000 : 2_000;
        Result r = new Result("heap", "retained heap per live export: live heap after a full GC, before and after " + n + " exports");
        r.param("exports", n);
        try (Run run = new Run(r, "message-order", 4096, List.of())) {
            run.watch("all", false, 0, 0);
            run.daemon.heap();              // first attach (opens the attach socket for good)
            run.baseline();
            DaemonProc.HeapSample before = run.daemon.heap();
            List<VfioExportClient> owners = new ArrayList<>();
            for (int h = 0; h < 10; h++) owners.add(VfioExportClient.connect(run.daemon.socket));
            DaemonProc.HeapSample withClients = run.daemon.heap();
            createMany(owners, n);
            DaemonProc.HeapSample after = run.daemon.heap();
            for (VfioExportClient o : owners) o.close();
            run.finish(true);
            DaemonProc.HeapSample released = run.daemon.heap();
            double per = (after.bytes() - withClients.bytes()) / (double) n;
            r.metric("heap_before_bytes", before.bytes()).metric("heap_with_10_clients_bytes", withClients.bytes())
                    .metric("heap_with_exports_bytes", after.bytes()).metric("heap_after_release_bytes", released.bytes())
                    .metric("bytes_per_live_export", per);
            // the classes that grew the most
            List<Map.Entry<String, Long>> growth = new ArrayList<>();
            for (var e : after.classes().entrySet()) {
                long[] b = withClients.classes().getOrDefault(e.getKey(), new long[2]);
                long d = e.getValue()[1] - b[1];
                if (d > 0) growth.add(Map.entry(e.getKey(), d));
            }
            growth.sort((a, b) -> Long.compare(b.getValue(), a.getValue()));
            StringBuilder sb = new StringBuilder();
            for (var e : growth.subList(0, Math.min(12, growth.size()))) {
                sb.append(String.format("%-70s %8.1f B/export%n", e.getKey(), e.getValue() / (double) n));
            }
            r.notes.add("Classes that grew the most per live export:\n```\n" + sb + "```");
        }
        return r;
    }
}

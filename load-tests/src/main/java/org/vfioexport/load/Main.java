package org.vfioexport.load;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * The load-test suite. {@code smoke}: every scenario, small, invariants on (CI). {@code full}: the measured run that
 * writes RESULTS.md and its plots. Exit status 1 on any violation.
 *
 * <pre>Main smoke|full|report --home DIR --work DIR [--only NAME,...|adv] [--jmh FILE] [--adv-md FILE] [--size smoke] [--out DIR] [--daemon-jvm OPTS]</pre>
 * {@code report} re-renders RESULTS.md from the last full run's saved results; {@code --size smoke} runs {@code full}
 * at smoke size (to try the report); {@code --out} writes RESULTS.md and the plots elsewhere than load-tests/.
 */
public final class Main {
    /** {@code --only adv} selects every adversarial scenario. */
    private static List<String> expand(List<String> names) {
        List<String> out = new ArrayList<>(names);
        if (out.remove("adv")) {
            out.addAll(List.of("adv-malformed", "adv-slowloris", "adv-conn-flood", "adv-unread-fds", "adv-kill9-resets", "adv-stalled-subscribers",
                    "adv-uid-quotas", "adv-another-uid", "adv-fd-exhaustion", "adv-output-flood", "adv-sigterm-stalled"));
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || !(args[0].equals("smoke") || args[0].equals("full") || args[0].equals("report"))) {
            System.err.println("usage: Main smoke|full|report --home DIR --work DIR [--only NAME,...|adv] [--jmh FILE] [--adv-md FILE] [--size smoke] [--out DIR]");
            System.exit(2);
        }
        boolean full = args[0].equals("full");
        Map<String, String> opt = new LinkedHashMap<>();
        for (int i = 1; i + 1 < args.length; i += 2) opt.put(args[i], args[i + 1]);
        Path home = Path.of(opt.getOrDefault("--home", ".")).toAbsolutePath().normalize();
        Path work = Path.of(opt.getOrDefault("--work", "load-tests/target/work")).toAbsolutePath();
        List<String> only = opt.containsKey("--only") ? expand(Arrays.asList(opt.get("--only").split(","))) : null;
        Files.createDirectories(work);
        // --size smoke with full: the report's whole path at smoke size (to try the rendering, not to publish)
        boolean fullSize = full && !"smoke".equals(opt.get("--size"));
        Path out = opt.containsKey("--out") ? Path.of(opt.get("--out")).toAbsolutePath() : home.resolve("load-tests");
        // --daemon-jvm "OPT ...": JVM options for every daemon (e.g. a JFR recording of one scenario, to profile it)
        List<String> daemonJvm = opt.containsKey("--daemon-jvm") ? Arrays.asList(opt.get("--daemon-jvm").trim().split("\\s+")) : List.of();
        Scenarios s = new Scenarios(home, work, fullSize ? Scenarios.Size.fullRun() : Scenarios.Size.smoke(), daemonJvm);
        Adversarial adv = new Adversarial(home, work, fullSize ? Adversarial.Size.fullRun() : Adversarial.Size.smoke());

        // JFR profiles of the daemon (full run only): both churns carry the same recording, so their ratio stays fair;
        // the cpu-* scenarios run without one
        Map<String, Path> profiles = new LinkedHashMap<>();
        for (String n : List.of("churn-message-order", "churn-lock", "fanout")) profiles.put(n, work.resolve(n + ".jfr"));
        java.util.function.Function<String, List<String>> jfr = n -> full
                ? List.of("-XX:StartFlightRecording=filename=" + profiles.get(n) + ",settings=profile") : List.of();
        Map<String, Callable<Result>> plan = new LinkedHashMap<>();
        plan.put("floor", s::floor);
        plan.put("export-rtt-message-order", () -> s.exportRtt("message-order"));
        plan.put("export-rtt-lock", () -> s.exportRtt("lock"));
        plan.put("export-rtt-message-order-no-audit", () -> s.exportRtt("message-order", false));
        plan.put("cpu-floor", s::cpuFloor);
        plan.put("cpu-message-order", () -> s.cpu("message-order"));
        plan.put("cpu-lock", () -> s.cpu("lock"));
        plan.put("cpu-message-order-no-audit", () -> s.cpu("message-order", false));
        plan.put("churn-message-order", () -> s.churn("message-order", false, 1, jfr.apply("churn-message-order")));
        plan.put("churn-lock", () -> s.churn("lock", false, 1, jfr.apply("churn-lock")));
        plan.put("churn-message-order-fds-kept", () -> s.churn("message-order", true, 1));
        plan.put("churn-message-order-depth8", () -> s.churn("message-order", false, 8));
        plan.put("reset-storm-message-order", () -> s.storm("message-order", false));
        plan.put("reset-storm-lock", () -> s.storm("lock", false));
        plan.put("isolation-message-order", () -> s.isolation("message-order"));
        plan.put("isolation-lock", () -> s.isolation("lock"));
        plan.put("memory-flap-message-order", () -> s.storm("message-order", true));
        plan.put("fanout", () -> s.fanout(jfr.apply("fanout")));
        plan.put("fanout-scoped", () -> ScopedFanout.run(s, List.of()));   // the same exports, each client subscribed to its own
        plan.put("slow-subscribers", s::slowSubscribers);
        plan.put("client-crashes", s::crashes);
        plan.put("heap", s::heap);
        plan.put("fleet", new FleetScenario(home, work, full)::run); // cluster mode: two nodes, events across them
        plan.put("handshake", () -> new HandshakeLoad(s).run());   // the revocation handshake's cost per reset
        // clients that try to break the service (the per-uid limits contract); names start with adv-
        plan.put("adv-malformed", adv::malformed);
        plan.put("adv-slowloris", adv::slowloris);
        plan.put("adv-conn-flood", adv::connectionFlood);
        plan.put("adv-unread-fds", adv::unreadFds);
        plan.put("adv-kill9-resets", adv::killUnderResets);
        plan.put("adv-stalled-subscribers", adv::stalledSubscribers);
        plan.put("adv-uid-quotas", adv::uidQuotas);
        plan.put("adv-another-uid", adv::anotherUid);
        plan.put("adv-fd-exhaustion", adv::fdExhaustion);
        plan.put("adv-output-flood", adv::outputFlood);
        plan.put("adv-sigterm-stalled", adv::sigtermStalled);

        if (args[0].equals("report")) {   // re-renders RESULTS.md from the last full run's saved results
            List<Result> saved;
            try (var in = new java.io.ObjectInputStream(Files.newInputStream(work.resolve("results.ser")))) {
                @SuppressWarnings("unchecked") List<Result> r = (List<Result>) in.readObject();
                saved = r;
            }
            new Report(home, out, saved, opt.containsKey("--jmh") ? Path.of(opt.get("--jmh")) : null,
                    profiles).write();
            System.out.println("wrote " + out.resolve("RESULTS.md"));
            return;
        }
        List<Result> results = new ArrayList<>();
        long t0 = System.nanoTime();
        int failed = 0;
        for (var e : plan.entrySet()) {
            if (only != null && !only.contains(e.getKey())) continue;
            long t = System.nanoTime();
            System.out.printf("== %s ...%n", e.getKey());
            Result r;
            try {
                r = e.getValue().call();
            } catch (Exception ex) {
                r = new Result(e.getKey(), "(failed to run)");
                r.violation("the scenario failed: " + ex);
                ex.printStackTrace();
            }
            r.wallMillis = (System.nanoTime() - t) / 1_000_000;
            results.add(r);
            System.out.printf("   %s in %.1f s: %s%n", r.violations.isEmpty() ? "ok" : "FAILED", r.wallMillis / 1000.0, r.metrics);
            for (String v : r.violations) System.out.println("   VIOLATION: " + v);
            if (!r.violations.isEmpty()) failed++;
        }
        System.out.printf("%d scenarios, %d failed, %.1f s%n", results.size(), failed, (System.nanoTime() - t0) / 1e9);
        if (opt.containsKey("--adv-md")) {   // the adversarial section alone, e.g. from a smoke run
            String md = AdversarialReport.section(results, String.format("From `load-tests/smoke` (smoke size) on %s.",
                    java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)));
            Files.writeString(Path.of(opt.get("--adv-md")), md);
            System.out.println("wrote " + opt.get("--adv-md"));
        }
        if (full) {
            try (var o = new java.io.ObjectOutputStream(Files.newOutputStream(work.resolve("results.ser")))) {
                o.writeObject(new ArrayList<>(results));
            }
            new Report(home, out, results, opt.containsKey("--jmh") ? Path.of(opt.get("--jmh")) : null,
                    profiles).write();
            System.out.println("wrote " + out.resolve("RESULTS.md"));
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}

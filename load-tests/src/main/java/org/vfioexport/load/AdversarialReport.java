package org.vfioexport.load;

import java.util.ArrayList;
import java.util.List;

/** The adversarial section of RESULTS.md: per scenario what was sent, what the daemon did, and the after-checks' figures. */
final class AdversarialReport {
    private AdversarialReport() {}

    static boolean isAdversarial(Result r) {
        return r.name.startsWith("adv-");
    }

    /** The section for the {@code adv-*} results among {@code results} (empty when there are none). */
    static String section(List<Result> results, String provenance) {
        List<Result> adv = new ArrayList<>();
        for (Result r : results) if (isAdversarial(r)) adv.add(r);
        if (adv.isEmpty()) return "";
        StringBuilder md = new StringBuilder();
        md.append("## Adversarial scenarios: a root service that one client cannot break\n\n");
        md.append(provenance).append("\n\n");
        md.append("Each `adv-*` scenario (`Adversarial.java`) starts its own daemon with the per-uid limits it exercises set explicitly "
                + "in `policy`, attacks it, and then checks: a fresh connection is greeted and answered `server.info` within "
                + AdversarialRun.ANSWER_LIMIT_MS + " ms; `/proc/<pid>/fd` is back at its baseline exactly (no slack: the paths are "
                + "warmed before the baseline); `server.info` exports is 0 once the clients are gone; the peak RSS (the kernel's VmHWM, "
                + "reset at the start) is at most " + AdversarialRun.RSS_GROWTH_LIMIT_MIB + " MiB over the RSS at the start (default JVM "
                + "flags, as `bin/vfio-exportd`; the unbounded buffering this hunts took 1.4 GB); no `-32603` and no internal error in the "
                + "daemon's log; exit 0 on SIGTERM. `load-tests/smoke` runs them small (CI), `load-tests/run-all` at full size.\n\n");
        md.append("| scenario | what was sent | what the daemon did | fds before / peak / after | exports left | RSS MiB before / peak / after | answer after (ms) | daemon CPU s | wall s | result |\n");
        md.append("|---|---|---|---|---|---|---|---|---|---|\n");
        for (Result r : adv) {
            md.append(String.format("| %s | %s | %s | %s / %s / %s | %s | %s / %s / %s | %s | %s | %.1f | %s |%n", r.name, cell(r, "sent"), cell(r, "daemon_did"),
                    cell(r, "fds_before"), cell(r, "fds_peak"), cell(r, "fds_after"), cell(r, "exports_left"), cell(r, "rss_before_mib"),
                    cell(r, "rss_peak_mib"), cell(r, "rss_after_mib"), cell(r, "answer_after_ms"), cell(r, "daemon_cpu_s"), r.wallMillis / 1000.0,
                    r.violations.isEmpty() ? "pass" : "**FAIL** (" + r.violations.size() + ")"));
        }
        md.append('\n');
        for (Result r : adv) {
            if (r.violations.isEmpty() && r.notes.isEmpty()) continue;
            md.append("**").append(r.name).append("**\n\n");
            for (String n : r.notes) md.append("- ").append(n.replace("\n", " ").replace("|", "\\|")).append('\n');
            for (String v : r.violations) md.append("- violation: ").append(first(v).replace("|", "\\|")).append('\n');
            md.append('\n');
        }
        return md.toString();
    }

    private static String cell(Result r, String k) {
        Object v = r.metrics.get(k);
        if (v == null) return "–";
        return String.valueOf(v).replace("|", "\\|").replace("\n", " ");
    }

    /** A violation's first line, cut: the daemon log tails some of them carry belong on the console, not in a table. */
    private static String first(String v) {
        String s = v.lines().findFirst().orElse("");
        return s.length() > 400 ? s.substring(0, 400) + "…" : s;
    }
}

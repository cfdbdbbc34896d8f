package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.VfioExportClient;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The fan-out scenario with scoped subscriptions: the same live exports, but owned by as many clients as the
 * all-events run has subscribers, each subscribed to its own exports only ({@code scope: "own"}). A reset then
 * sends each client its own revocations (and restores), 2 per export plus the device's two states, instead of every
 * event of the device. Measured: reset request sent → the last client has all its revocations (the target), and →
 * the last client has the reset's last event.
 */
final class ScopedFanout {
    private ScopedFanout() {}

    static Result run(Scenarios s, List<String> jvm) throws Exception {
        int clients = s.size.fanoutSubscribers(), per = s.size.fanoutExports() / clients;
        int exports = per * clients, resets = 4 * s.size.fanoutResets();
        Result r = new Result("fanout-scoped", exports + " live exports of " + clients + " clients, each subscribed to"
                + " its own (scope own), one reset at a time: time until every client has all its revocations");
        r.param("live_exports", exports).param("subscribers", clients).param("exports_per_subscriber", per)
                .param("resets", resets).param("scope", "own");
        try (Scenarios.Run run = s.new Run(r, "message-order", 4 * per + 1024, jvm)) {
            List<Watcher> owners = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                Watcher w = new Watcher(run.daemon.socket, "own" + i, "own");
                run.watchers.add(w);           // finish() checks each stream (scoped rules) and that it reaches the heads
                owners.add(w);
            }
            run.baseline();
            for (Watcher w : owners) w.createExports(Scenarios.DEV, per, 60_000);
            r.metric("exports_live", run.daemon.info().getLong("exports"));
            Histogram revocations = Stats.histogram(), all = Stats.histogram(), resp = Stats.histogram();
            double d0 = Scenarios.cpuSeconds(run.daemon.pid), g0 = Scenarios.cpuSeconds(ProcessHandle.current().pid());
            try (VfioExportClient ctl = VfioExportClient.connect(run.daemon.socket)) {
                for (int k = 0; k < resets; k++) {
                    long t0 = System.nanoTime();
                    JsonObject res = ctl.request("device.reset", new JsonObject().put("device", Scenarios.DEV));
                    resp.recordValue(System.nanoTime() - t0);
                    if (res.getLong("revoked") != exports) r.violation("reset " + k + " revoked " + res.getLong("revoked"));
                    long head = ctl.request("device.get", new JsonObject().put("device", Scenarios.DEV)).getLong("seq");
                    long want = (long) (k + 1) * per, lastRevoked = 0, last = 0;
                    for (Watcher w : owners) {
                        // the arrival times are taken by the watchers' threads; this only waits for them to be there
                        if (!w.awaitHeads(Map.of(Scenarios.DEV, head), 120_000)) {
                            r.violation("subscriber did not get seq " + head);
                            continue;
                        }
                        if (w.revoked() != want) r.violation("a subscriber has " + w.revoked() + " revocations after reset " + k + ", expected " + want);
                        lastRevoked = Math.max(lastRevoked, w.lastRevokedAt());
                        Long at = w.stateArrivals.getOrDefault(Scenarios.DEV, Map.of()).get(head);
                        if (at == null) r.violation("the reset's last event (seq " + head + ") is not a device.state");
                        else last = Math.max(last, at);
                    }
                    revocations.recordValue(Math.max(0, lastRevoked - t0));
                    all.recordValue(Math.max(0, last - t0));
                }
            }
            double d1 = Scenarios.cpuSeconds(run.daemon.pid), g1 = Scenarios.cpuSeconds(ProcessHandle.current().pid());
            r.metric("daemon_cpu_s_per_reset", (d1 - d0) / resets).metric("generator_cpu_s_per_reset", (g1 - g0) / resets);
            long lost = 0;
            for (Watcher w : owners) lost += w.lostEvents();
            r.metric("events_per_reset", 2L * exports + 2);
            r.metric("deliveries_per_reset", (2L * per + 2) * clients);
            r.metric("events_lost", lost);
            if (lost > 0) r.violation(lost + " events lost: every event in scope must be delivered");
            r.metric("reset_response_p50_ms", resp.getValueAtPercentile(50) / 1e6);
            r.metric("revocations_p50_ms", revocations.getValueAtPercentile(50) / 1e6);
            r.metric("revocations_p99_ms", revocations.getValueAtPercentile(99) / 1e6);
            r.metric("revocations_max_ms", revocations.getMaxValue() / 1e6);
            r.metric("all_delivered_p50_ms", all.getValueAtPercentile(50) / 1e6);
            r.metric("all_delivered_p99_ms", all.getValueAtPercentile(99) / 1e6);
            r.latencies.put("scoped reset: all clients have all their revocations", revocations);
            r.latencies.put("scoped reset: all clients have the reset's last event", all);
            r.latencies.put("scoped reset: response", resp);
            for (Watcher w : owners) w.releaseExports(60_000);
            // the releases are the device's last events, out of every scope: a reset with no export left ends the
            // stream with device events, which every scoped watcher sees, so finish() can wait for the heads
            try (VfioExportClient ctl = VfioExportClient.connect(run.daemon.socket)) {
                ctl.request("device.reset", new JsonObject().put("device", Scenarios.DEV));
            }
            run.finish(true);
        }
        return r;
    }
}

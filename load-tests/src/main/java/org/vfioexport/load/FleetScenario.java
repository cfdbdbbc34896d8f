package org.vfioexport.load;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.VfioExportClient;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Cluster mode: two daemons on loopback as one fleet. A subscriber on node A follows the fleet stream while node B
 * resets its device with live exports, one reset at a time. Measures how long each of B's events takes to reach
 * the subscriber on A (the event's own time, stamped on B, to its arrival on A: one clock, one host), and the time
 * from the reset request on B to A having the reset's last event. Checks that the per-device seq has no gap.
 */
final class FleetScenario {
    private final Path home;
    private final Path work;
    private final boolean full;

    FleetScenario(Path home, Path work, boolean full) {
        this.home = home;
        this.work = work;
        this.full = full;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private DaemonProc node(String name, int port, List<String> members) throws Exception {
        JsonObject cluster = new JsonObject().put("enabled", true).put("node", name).put("name", "fleet-load")
                .put("port", port).put("members", new JsonArray(members)).put("failure_timeout_ms", 3000);
        JsonObject top = new JsonObject().put("cluster", cluster);
        JsonObject policy = new JsonObject().put("max_exports_per_client", 20_000).put("subscriber_queue", 1 << 20);
        return DaemonProc.start(home, work.resolve("fleet-" + name), "message-order", policy, top, List.of(), List.of());
    }

    Result run() throws Exception {
        int exports = full ? 1000 : 50, resets = full ? 200 : 20;
        Result r = new Result("fleet", "two nodes on loopback: a subscriber on A follows resets of B's device with "
                + exports + " live exports (fleet event latency across nodes)");
        r.param("nodes", 2).param("live_exports_on_b", exports).param("resets", resets);
        int pa = freePort(), pb = freePort();
        List<String> members = List.of("127.0.0.1:" + pa, "127.0.0.1:" + pb);
        long startT0 = System.nanoTime();
        try (DaemonProc a = node("a", pa, members); DaemonProc b = node("b", pb, members);
             VfioExportClient sub = VfioExportClient.connect(a.socket); VfioExportClient ctl = VfioExportClient.connect(b.socket)) {
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (sub.request("fleet.nodes").getJsonArray("nodes").stream()
                    .filter(n -> "up".equals(((JsonObject) n).getString("state"))).count() < 2) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("the two nodes did not see each other in 120 s");
                Thread.sleep(20); // polling a bounded wait
            }
            r.metric("cluster_ready_s", (System.nanoTime() - startT0) / 1e9);
            sub.request("events.subscribe", new JsonObject().put("fleet", true));
            // the subscriber reads on its own thread, so an event's arrival is when A sent it, not when this loop
            // got round to it (the reset's response on B comes later than most of its events on A)
            java.util.concurrent.BlockingQueue<Object[]> arrivals = new java.util.concurrent.LinkedBlockingQueue<>();
            Thread reader = new Thread(() -> {
                try {
                    while (true) {
                        JsonObject e = sub.nextEvent(600_000);
                        arrivals.add(new Object[] {e, Instant.now()});
                    }
                } catch (IOException end) {
                    // the connection closed at the end of the scenario
                }
            }, "fleet-subscriber");
            reader.setDaemon(true);
            reader.start();
            for (int i = 0; i < exports; i++) {
                ctl.export(Scenarios.DEV, 2, 0, 4096).fd().close(); // the export stays, held by B
            }
            Histogram event = Stats.histogram(), lastEvent = Stats.histogram();
            long lastSeq = -1, lost = 0, gaps = 0, received = 0;
            for (int k = 0; k < resets; k++) {
                Instant sent = Instant.now();
                JsonObject res = ctl.request("device.reset", new JsonObject().put("device", Scenarios.DEV));
                if (res.getLong("revoked") != exports) r.violation("reset " + k + " revoked " + res.getLong("revoked"));
                boolean readySeen = false;
                int resetEvents = 0;
                while (!readySeen) {
                    Object[] got = arrivals.poll(60, java.util.concurrent.TimeUnit.SECONDS);
                    if (got == null) throw new IllegalStateException("no event on A within 60 s after reset " + k);
                    JsonObject e = (JsonObject) got[0];
                    Instant arrived = (Instant) got[1];
                    if (!"b".equals(e.getString("node")) || !Scenarios.DEV.equals(e.getString("device"))) continue;
                    if ("events.lost".equals(e.getString("type"))) {
                        lost += e.getLong("to_seq") - e.getLong("from_seq") + 1;
                        lastSeq = e.getLong("to_seq");
                        continue;
                    }
                    long seq = e.getLong("seq");
                    if (lastSeq >= 0 && seq != lastSeq + 1) gaps++;
                    lastSeq = seq;
                    received++;
                    Instant stamped = Instant.parse(e.getString("time"));
                    if (!stamped.isBefore(sent)) {
                        resetEvents++;
                        event.recordValue(Math.max(0, Duration.between(stamped, arrived).toNanos()));
                    }
                    if ("device.state".equals(e.getString("type")) && "ready".equals(e.getString("state")) && resetEvents > 0) {
                        readySeen = true;
                        lastEvent.recordValue(Math.max(0, Duration.between(sent, arrived).toNanos()));
                    }
                }
                if (resetEvents != 2 * exports + 2) r.violation("reset " + k + ": " + resetEvents + " events on A, expected " + (2 * exports + 2));
            }
            r.metric("events_received_on_a", received).metric("events_lost", lost).metric("seq_gaps", gaps);
            if (lost > 0) r.violation(lost + " events lost between nodes");
            if (gaps > 0) r.violation(gaps + " per-device seq gaps without events.lost");
            r.metric("fleet_event_p50_ms", event.getValueAtPercentile(50) / 1e6);
            r.metric("fleet_event_p99_ms", event.getValueAtPercentile(99) / 1e6);
            r.metric("fleet_event_max_ms", event.getMaxValue() / 1e6);
            r.metric("reset_to_last_event_on_a_p50_ms", lastEvent.getValueAtPercentile(50) / 1e6);
            r.metric("reset_to_last_event_on_a_p99_ms", lastEvent.getValueAtPercentile(99) / 1e6);
            r.latencies.put("fleet: B's event stamped → on A's subscriber", event);
            r.latencies.put("fleet: reset sent on B → its last event on A", lastEvent);
        }
        return r;
    }
}

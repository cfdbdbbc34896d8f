package org.vfioexport.load;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventInvariants;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.vfioexport.load.Scenarios.DEV;

/**
 * The revocation handshake's cost: resets of a device whose exports belong to N importer connections (each owns one
 * export, attaches a simulated importer to it and maps it), first unwatched, then with every export watched and
 * every importer answering {@code export.quiesced} from its own thread as soon as it reads {@code export.revoking}.
 * Measures the reset's response time both ways (the difference is the handshake's overhead per reset) and the
 * handshake's own duration as the daemon reports it ({@code quiesce_us}); checks that every handshake had every
 * answer and that a subscriber's stream passes {@link EventInvariants} (guarantee 8 included).
 */
final class HandshakeLoad {
    private final Scenarios scenarios;

    HandshakeLoad(Scenarios scenarios) {
        this.scenarios = scenarios;
    }

    Result run() throws Exception {
        boolean full = scenarios.size.full();
        // -Dhandshake.importers, -Dhandshake.resets: the full run's size from a smoke run, for a quick measurement
        int importers = Integer.getInteger("handshake.importers", full ? 100 : 20);
        int resets = Integer.getInteger("handshake.resets", full ? 48 : 8);
        Result r = new Result("handshake", resets + " resets of a device with " + importers
                + " importer connections, in alternating blocks: unwatched, then each watching its export and answering export.quiesced");
        r.param("importers", importers).param("resets", resets).param("quiesce_ms", 10_000);
        try (Scenarios.Run run = scenarios.new Run(r, "message-order", 1 << 20, List.of())) {
            run.baseline();
            List<VfioExportClient> owners = new ArrayList<>();
            List<String> exportIds = new ArrayList<>();
            for (int i = 0; i < importers; i++) {
                VfioExportClient c = VfioExportClient.connect(run.daemon.socket).timeout(60_000);
                owners.add(c);
                var b = c.export(DEV, 2, i * 4096L, 4096);
                b.fd().close();
                exportIds.add(b.id());
                String imp = c.request("importer.attach", new JsonObject().put("export_id", b.id())).getString("importer_id");
                c.request("importer.map", new JsonObject().put("importer_id", imp));
            }
            Subscriber sub = new Subscriber(VfioExportClient.connect(run.daemon.socket).timeout(60_000));
            try (VfioExportClient ctl = VfioExportClient.connect(run.daemon.socket).timeout(60_000)) {
                // alternating blocks of unwatched and watched resets, so that the machine's drift hits both alike
                Answerers answerers = new Answerers(owners, exportIds);
                Histogram without = Stats.histogram(), with = Stats.histogram(), quiesce = Stats.histogram();
                int block = 4;
                for (int done = 0; done < resets; done += block) {
                    int n = Math.min(block, resets - done);
                    resets(ctl, n, 0, r, "unwatched", without, Stats.histogram());
                    answerers.watch(true);
                    resets(ctl, n, importers, r, "watched", with, quiesce);
                    answerers.watch(false);
                }
                answerers.stop();
                if (answerers.failure.get() != null) r.violation("an importer failed: " + answerers.failure.get());
                r.metric("reset_p50_ms_without", without.getValueAtPercentile(50) / 1e6);
                r.metric("reset_p50_ms_with", with.getValueAtPercentile(50) / 1e6);
                r.metric("reset_p99_ms_without", without.getValueAtPercentile(99) / 1e6);
                r.metric("reset_p99_ms_with", with.getValueAtPercentile(99) / 1e6);
                r.metric("overhead_p50_ms", (with.getValueAtPercentile(50) - without.getValueAtPercentile(50)) / 1e6);
                r.metric("handshake_p50_ms", quiesce.getValueAtPercentile(50) / 1e6);
                r.metric("handshake_p99_ms", quiesce.getValueAtPercentile(99) / 1e6);
                r.latencies.put("reset response, exports unwatched", without);
                r.latencies.put("reset response, " + importers + " acking watchers", with);
                r.latencies.put("handshake (quiesce_us)", quiesce);
                long head = ctl.request("device.get", new JsonObject().put("device", DEV)).getLong("seq");
                for (String v : sub.drainTo(head)) if (r.violations.size() < 50) r.violation("subscriber: " + v);
            }
            sub.client.close();
            for (VfioExportClient c : owners) c.close();
            run.finish(true);
        }
        return r;
    }

    /** {@code n} resets one after another; each must have had {@code watches} answers and no timeout. */
    private static void resets(VfioExportClient ctl, int n, int watches, Result r, String phase, Histogram h,
                               Histogram quiesce) throws Exception {
        for (int k = 0; k < n; k++) {
            long t0 = System.nanoTime();
            JsonObject res = ctl.request("device.reset", new JsonObject().put("device", DEV).put("quiesce_ms", 10_000));
            h.recordValue(System.nanoTime() - t0);
            if (res.getInteger("acked") != watches || res.getInteger("timed_out") != 0) {
                r.violation(phase + " reset " + k + ": " + res.encode());
            }
            if (watches > 0) quiesce.recordValue(Math.max(1, res.getLong("quiesce_us") * 1000));
        }
    }

    /**
     * One thread per importer, the only user of its connection: it starts or ends its watch when told, and answers
     * every {@code export.revoking} it reads with {@code export.quiesced} at once.
     */
    private static final class Answerers {
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final List<Thread> threads = new ArrayList<>();
        private volatile CountDownLatch switched = new CountDownLatch(0);
        private volatile boolean watching;

        Answerers(List<VfioExportClient> owners, List<String> exportIds) {
            for (int i = 0; i < owners.size(); i++) {
                VfioExportClient c = owners.get(i);
                String exportId = exportIds.get(i);
                Thread t = new Thread(() -> {
                    boolean mine = false;
                    try {
                        while (!stop.get()) {
                            if (mine != watching) {
                                CountDownLatch l = switched;    // written before watching: the latch of this switch
                                boolean want = watching;
                                c.request("export.watch", new JsonObject().put("export_id", exportId).put("ack", want));
                                mine = want;
                                l.countDown();
                            }
                            JsonObject notice;
                            try {
                                notice = c.nextNotification("export.revoking", 50);
                            } catch (org.vfioexport.client.TimeoutIOException idle) {
                                continue;      // bounded: look at the flags again
                            }
                            c.request("export.quiesced", new JsonObject().put("export_id", notice.getString("export_id")));
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }, "importer");
                t.setDaemon(true);
                t.start();
                threads.add(t);
            }
        }

        /** Every importer starts ({@code true}) or ends its watch; returns once all have. */
        void watch(boolean on) throws Exception {
            CountDownLatch l = new CountDownLatch(threads.size());
            switched = l;
            watching = on;
            if (!l.await(30, TimeUnit.SECONDS)) throw new java.io.IOException("importers did not switch their watches");
        }

        void stop() throws InterruptedException {
            stop.set(true);
            for (Thread t : threads) t.join(10_000);
        }
    }

    /** A subscriber of the device from its first event; its stream is checked once the resets are over. */
    private static final class Subscriber {
        final VfioExportClient client;

        Subscriber(VfioExportClient client) throws Exception {
            this.client = client;
            client.request("events.subscribe", new JsonObject().put("devices", new JsonArray().add(DEV))
                    .put("since", new JsonObject().put(DEV, 0)));
        }

        List<String> drainTo(long head) throws Exception {
            EventInvariants inv = new EventInvariants();
            long seq = 0;
            while (seq < head) {
                Event e = Event.fromJson(client.nextEvent(60_000));
                inv.accept(e);
                seq = Math.max(seq, e.type() == org.vfioexport.events.EventType.EVENTS_LOST ? e.toSeq() : e.seq());
            }
            return inv.violations();
        }
    }
}

package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * N clients, each doing up to M export+release pairs (or until the time bound), {@code depth} requests in flight
 * per client. Records the export round trip (request written to response with its fd read) and the pair time.
 */
final class Churn {
    final Path socket;
    final List<String> devices;
    final int clients;
    final long pairsPerClient;
    final long maxMillis;
    final boolean keepFds;
    final int depth;

    /** Fds a client keeps open at most (the oldest is closed beyond): 64 clients stay under RLIMIT_NOFILE 20,000. */
    static final int KEEP_PER_CLIENT = 200;

    final Histogram exportRtt = Stats.histogram();
    final Histogram releaseRtt = Stats.histogram();
    final AtomicLong pairs = new AtomicLong();
    final AtomicLong busy = new AtomicLong();
    final AtomicLong revokedAtCreate = new AtomicLong();
    final List<String> errors = Collections.synchronizedList(new ArrayList<>());
    Stats.Timeline timeline;
    long elapsedNanos;
    private volatile boolean stop;

    Churn(Path socket, String device, int clients, long pairsPerClient, long maxMillis, boolean keepFds, int depth) {
        this(socket, List.of(device), clients, pairsPerClient, maxMillis, keepFds, depth);
    }

    /** Client i works on {@code devices[i % n]}. */
    Churn(Path socket, List<String> devices, int clients, long pairsPerClient, long maxMillis, boolean keepFds, int depth) {
        this.socket = socket;
        this.devices = devices;
        this.clients = clients;
        this.pairsPerClient = pairsPerClient;
        this.maxMillis = maxMillis;
        this.keepFds = keepFds;
        this.depth = depth;
    }

    void stop() {
        stop = true;
    }

    Churn run() throws InterruptedException {
        List<Thread> threads = new ArrayList<>();
        timeline = new Stats.Timeline();
        long deadline = System.nanoTime() + maxMillis * 1_000_000;
        for (int i = 0; i < clients; i++) {
            String device = devices.get(i % devices.size());
            Thread t = new Thread(() -> client(device, deadline), "churn-" + i);
            threads.add(t);
        }
        long t0 = System.nanoTime();
        for (Thread t : threads) t.start();
        for (Thread t : threads) t.join();
        elapsedNanos = System.nanoTime() - t0;
        return this;
    }

    double pairsPerSecond() {
        return pairs.get() * 1e9 / elapsedNanos;
    }

    private void client(String device, long deadline) {
        Histogram ex = Stats.histogram(), rel = Stats.histogram();
        java.util.ArrayDeque<Integer> kept = new java.util.ArrayDeque<>();
        JsonObject params = new JsonObject().put("device", device).put("region", 0).put("offset", 0).put("length", 4096);
        try (VfioExportClient c = VfioExportClient.connect(socket)) {
            long done = 0;
            Object[] ids = new Object[depth];
            long[] sent = new long[depth];
            String[] exports = new String[depth];
            while (done < pairsPerClient && !stop && System.nanoTime() < deadline) {
                int k = (int) Math.min(depth, pairsPerClient - done);
                for (int i = 0; i < k; i++) {
                    sent[i] = System.nanoTime();
                    ids[i] = c.send("export.create", params);
                }
                int ok = 0;
                for (int i = 0; i < k; i++) {
                    Message m = c.await(ids[i]);
                    ex.recordValue(System.nanoTime() - sent[i]);
                    JsonObject o = m.object();
                    if (o.containsKey("error")) {
                        int code = o.getJsonObject("error").getInteger("code");
                        if (code == -32004) busy.incrementAndGet();
                        else errors.add("export.create: " + o.getJsonObject("error").encode());
                        continue;
                    }
                    if (m.fds().length != 1) errors.add("export.create came with " + m.fds().length + " fds");
                    for (int fd : m.fds()) {
                        if (keepFds) {
                            kept.add(fd);
                            if (kept.size() > KEEP_PER_CLIENT) Posix.close(kept.poll());
                        } else {
                            Posix.close(fd);
                        }
                    }
                    JsonObject r = o.getJsonObject("result");
                    if ("revoked".equals(r.getString("state"))) revokedAtCreate.incrementAndGet();
                    exports[ok++] = r.getString("export_id");
                }
                for (int i = 0; i < ok; i++) {
                    sent[i] = System.nanoTime();
                    ids[i] = c.send("export.release", new JsonObject().put("export_id", exports[i]));
                }
                for (int i = 0; i < ok; i++) {
                    Message m = c.await(ids[i]);
                    rel.recordValue(System.nanoTime() - sent[i]);
                    if (m.object().containsKey("error")) errors.add("export.release: " + m.object().getJsonObject("error").encode());
                }
                done += ok;
                pairs.addAndGet(ok);
                timeline.add(ok);
                if (ok == 0) Thread.onSpinWait();
            }
        } catch (Exception e) {
            errors.add("client: " + e);
        } finally {
            for (int fd : kept) {
                try {
                    Posix.close(fd);
                } catch (PosixException ignored) {
                    // nothing more to do
                }
            }
            synchronized (exportRtt) {
                exportRtt.add(ex);
                releaseRtt.add(rel);
            }
        }
    }
}

package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
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
    /** Opened once every client is connected. */
    private final CountDownLatch go = new CountDownLatch(1);
    private CountDownLatch connected;
    private final List<Thread> threads = new ArrayList<>();
    private volatile long deadline;
    private long t0;

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

    /** Every client connects first; the clock (and the time bound) starts once all are connected. */
    Churn run() throws InterruptedException {
        runAll(() -> {}, this);
        return this;
    }

    /**
     * Runs {@code churns} at the same time: every client of every churn connects, then {@code atStart} runs (a
     * storm starting with the clock), then all start together, with the same time bound; returns when all are done.
     */
    static void runAll(Runnable atStart, Churn... churns) throws InterruptedException {
        for (Churn c : churns) c.startClients();
        for (Churn c : churns) {
            if (!c.connected.await(60, TimeUnit.SECONDS)) c.errors.add("clients still not connected after 60 s: " + c.connected.getCount());
        }
        atStart.run();
        long t0 = System.nanoTime();
        for (Churn c : churns) {
            c.timeline = new Stats.Timeline();
            c.t0 = t0;
            c.deadline = t0 + c.maxMillis * 1_000_000;
            c.go.countDown();
        }
        for (Churn c : churns) {
            for (Thread t : c.threads) t.join();
            c.elapsedNanos = System.nanoTime() - c.t0;
        }
    }

    private void startClients() {
        connected = new CountDownLatch(clients);
        for (int i = 0; i < clients; i++) {
            String device = devices.get(i % devices.size());
            Thread t = new Thread(() -> client(device, connected), "churn-" + i);
            threads.add(t);
        }
        for (Thread t : threads) t.start();
    }

    double pairsPerSecond() {
        return pairs.get() * 1e9 / elapsedNanos;
    }

    private void client(String device, CountDownLatch connected) {
        Histogram ex = Stats.histogram(), rel = Stats.histogram();
        java.util.ArrayDeque<Fd> kept = new java.util.ArrayDeque<>();
        JsonObject params = new JsonObject().put("device", device).put("region", 0).put("offset", 0).put("length", 4096);
        VfioExportClient client;
        try {
            client = VfioExportClient.connect(socket);
        } catch (Exception e) {
            errors.add("client: connect: " + e);
            return;
        } finally {
            connected.countDown();
        }
        try (VfioExportClient c = client) {
            go.await();
            long deadline = this.deadline;
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
                    for (Fd fd : m.fds()) {
                        if (keepFds) {
                            kept.add(fd);
                            if (kept.size() > KEEP_PER_CLIENT) kept.poll().close();
                        } else {
                            fd.close();
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
            Fd.closeQuietly(kept); // nothing more to do
            synchronized (exportRtt) {
                exportRtt.add(ex);
                releaseRtt.add(rel);
            }
        }
    }
}

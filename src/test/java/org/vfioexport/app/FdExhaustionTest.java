package org.vfioexport.app;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.testutil.DaemonProcess;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * A daemon that runs out of file descriptors (started with a low RLIMIT_NOFILE, per-uid limits raised past it so
 * that the fd table really fills) keeps its promises: no export is left behind, every request gets its one
 * answer, and it serves again once fds are free.
 */
class FdExhaustionTest {
    @TempDir
    Path dir;

    /** Per-uid limits far above the fd limit: these tests are about the fd table itself running out. */
    private static final Consumer<JsonObject> UNLIMITED = c -> c.getJsonObject("policy")
            .put("max_exports_per_client", 100_000).put("max_exports_per_uid", 100_000)
            .put("max_fds_in_flight_per_uid", 100_000).put("max_connections_per_uid", 1000);

    @Test
    void anExportWhoseFdCannotBeDuplicatedIsReleasedAndSaysSo() throws Exception {
        int undeliverable = 3;
        try (DaemonProcess d = DaemonProcess.startWithFdLimit(dir, 200, UNLIMITED); VfioExportClient c = d.connect()) {
            // fill the daemon's fd table with exports (each holds one fd there) until the kernel says EMFILE
            List<String> held = new ArrayList<>();
            boolean oneFree;
            for (int i = 0; ; i++) {
                assertTrue(i < 400, "the daemon never ran out of fds under RLIMIT_NOFILE 200");
                try {
                    ExportedBuffer b = c.export(GPU, 0, 0, 4096);
                    b.fd().close();
                    held.add(b.id());
                } catch (RpcError e) {
                    boolean kernel = e.code() == -32000 && "EMFILE".equals(e.data().getString("name"));
                    boolean dup = e.code() == -32005 && "fds".equals(e.data().getString("limit"));
                    assertTrue(kernel || dup, "expected EMFILE from the kernel or from dup, got " + e.code() + " " + e.getMessage());
                    // a failed dup released its export, whose buffer's fd is free again; a failed buffer took none
                    oneFree = dup;
                    if (dup) undeliverable++;
                    break;
                }
            }
            // one fd free: the next export's buffer takes it, and nothing is left to duplicate it for sending
            if (!oneFree) c.request("export.release", new JsonObject().put("export_id", held.remove(held.size() - 1)));
            for (int round = 0; round < 3; round++) {
                RpcError e = expectError(c);
                assertEquals(-32005, e.code(), e.getMessage());
                assertEquals("fds", e.data().getString("limit"));
                assertEquals("EMFILE", e.data().getString("name"));
                assertTrue(e.getMessage().startsWith("the daemon is out of file descriptors"), e.getMessage());
            }
            // the undeliverable exports were released: only the held ones remain
            assertEquals(held.size(), c.request("server.info").getInteger("exports"));
        }
        // and the audit journal says so: created, then released with cause undeliverable
        List<JsonObject> journal = java.nio.file.Files.readAllLines(dir.resolve("vfio-export.audit.jsonl")).stream()
                .map(JsonObject::new).toList();
        assertEquals(undeliverable, journal.stream().filter(r -> "undeliverable".equals(r.getString("cause"))).count());
    }

    private static RpcError expectError(VfioExportClient c) throws IOException {
        try {
            ExportedBuffer b = c.export(GPU, 0, 0, 4096);
            b.fd().close();
            throw new AssertionError("export " + b.id() + " succeeded with no fd free");
        } catch (RpcError e) {
            return e;
        } catch (org.vfioexport.ffm.posix.PosixException e) {
            throw new IOException(e);
        }
    }

    /**
     * Five connections pipeline 4,096 {@code export.create} each, alternating the two devices, into a daemon whose
     * fd table fills up on the way: every request gets exactly one answer, and once the clients are gone no
     * export is left and the daemon's fd count is back to where it was.
     */
    @Test
    void aStormAtTheFdLimitAnswersEveryRequestAndLeavesNothing() throws Exception {
        int connections = 5, perConnection = 4096;
        try (DaemonProcess d = DaemonProcess.startWithFdLimit(dir, 400, UNLIMITED)) {
            long baselineFds = d.fdCount();
            ExecutorService pool = Executors.newFixedThreadPool(2 * connections);
            try {
                List<VfioExportClient> clients = new ArrayList<>();
                for (int i = 0; i < connections; i++) clients.add(d.connect());
                List<Future<Map<String, Integer>>> outcomes = new ArrayList<>();
                for (VfioExportClient c : clients) {
                    pool.submit(() -> {
                        for (int i = 0; i < perConnection; i++) {
                            c.send("export.create", new JsonObject().put("device", i % 2 == 0 ? NVME : GPU)
                                    .put("region", 2).put("offset", 0).put("length", 4096));
                        }
                        return null;
                    });
                    outcomes.add(pool.submit(() -> readAnswers(c, perConnection)));
                }
                int ok = 0;
                for (Future<Map<String, Integer>> f : outcomes) {
                    Map<String, Integer> byKind = f.get(120, TimeUnit.SECONDS);
                    ok += byKind.getOrDefault("ok", 0);
                    for (String kind : byKind.keySet()) {
                        assertTrue(kind.equals("ok") || kind.equals("-32000 EMFILE") || kind.equals("-32005 fds"),
                                "unexpected answer " + kind + " in " + byKind);
                    }
                }
                assertTrue(ok > 0, "no export succeeded at all");
                // the storm may have filled the fd table: free a few fds, from whichever clients hold exports
                int released = releaseSome(clients, 4);
                try (VfioExportClient probe = connectWhenAccepted(d)) {
                    assertEquals(ok - released, probe.request("server.info").getInteger("exports"),
                            "exports held by the storm's clients");
                }
                for (VfioExportClient c : clients) c.close();
                try (VfioExportClient probe = connectWhenAccepted(d)) {
                    awaitNoExports(probe);
                }
                awaitFds(d, baselineFds);
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /** Reads {@code n} responses (closing their fds) and counts them by kind; fails on a duplicate or a gap. */
    private static Map<String, Integer> readAnswers(VfioExportClient c, int n) throws IOException {
        Map<String, Integer> byKind = new HashMap<>();
        boolean[] seen = new boolean[n + 2];
        for (int got = 0; got < n; ) {
            Message m;
            try {
                m = c.read(60_000);
            } catch (IOException e) {
                throw new AssertionError("after " + got + " of " + n + " answers (" + byKind + "): " + e.getMessage(), e);
            }
            Fd.closeQuietly(m.fds()); // the test only counts
            if (m.isNotification()) continue;
            JsonObject o = m.object();
            int id = o.getInteger("id");
            if (seen[id]) fail("request " + id + " answered twice");
            seen[id] = true;
            got++;
            String kind;
            if (o.containsKey("result")) {
                kind = "ok";
                if (m.fds().length != 1) fail("result of " + id + " came with " + m.fds().length + " fds");
            } else {
                JsonObject err = o.getJsonObject("error");
                JsonObject data = err.getJsonObject("data", new JsonObject());
                kind = err.getInteger("code") + " " + (err.getInteger("code") == -32000 ? data.getString("name")
                        : data.getString("limit"));
            }
            byKind.merge(kind, 1, Integer::sum);
        }
        return byKind;
    }

    /** Releases up to {@code n} exports of {@code c}, which frees as many fds in the daemon; returns how many. */
    /** Releases up to {@code n} exports, taken from the clients in turn (one client may hold none). */
    private static int releaseSome(List<VfioExportClient> clients, int n) throws Exception {
        int released = 0;
        for (VfioExportClient c : clients) {
            List<JsonObject> some = c.request("export.list").getJsonArray("exports").stream()
                    .map(JsonObject.class::cast).limit(n - released).toList();
            for (JsonObject e : some) c.request("export.release", new JsonObject().put("export_id", e.getString("export_id")));
            released += some.size();
            if (released == n) break;
        }
        return released;
    }

    /**
     * Connects, again while the daemon refuses with -32005 for want of an fd ("try again later": a released
     * export's fd is closed by its deferred release, after the answer), for at most 30 s.
     */
    private static VfioExportClient connectWhenAccepted(DaemonProcess d) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                return d.connect();
            } catch (IOException refused) {
                if (!String.valueOf(refused.getMessage()).contains("-32005") || System.nanoTime() > deadline) throw refused;
            }
        }
    }

    private static void awaitNoExports(VfioExportClient probe) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        int left;
        while ((left = probe.request("server.info").getInteger("exports")) != 0) {
            if (System.nanoTime() > deadline) fail(left + " exports left after every client went away");
            Thread.onSpinWait();
        }
    }

    private static void awaitFds(DaemonProcess d, long baseline) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        long now;
        while ((now = d.fdCount()) > baseline) {
            if (System.nanoTime() > deadline) fail("the daemon holds " + now + " fds, " + baseline + " before the storm");
            Thread.onSpinWait();
        }
    }

}

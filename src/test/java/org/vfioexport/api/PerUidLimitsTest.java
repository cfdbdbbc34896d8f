package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.testutil.Prometheus;
import org.vfioexport.testutil.TestDaemon;

import java.io.EOFException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The per-uid limits: a second connection never buys more. Each limit is exceeded here, with the -32005 it
 * answers, and shown to give its room back. All clients of this test run as one uid (the test's own).
 */
class PerUidLimitsTest {
    @TempDir
    Path dir;

    private static Consumer<JsonObject> policy(String key, int value) {
        return c -> c.getJsonObject("policy").put(key, value);
    }

    @Test
    void connectionsPerUidAreBoundedAndASurplusOneIsToldWhy() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_connections_per_uid", 3))) {
            List<VfioExportClient> open = new ArrayList<>();
            for (int i = 0; i < 3; i++) open.add(d.connect());
            // the fourth gets one error line instead of hello, then EOF
            int sock = Posix.connectUnix(d.socket().toString());
            try {
                String line = RawLines.readLine(sock, 10_000);
                JsonObject err = new JsonObject(line).getJsonObject("error");
                assertEquals(-32005, err.getInteger("code"), line);
                assertEquals("max_connections_per_uid", err.getJsonObject("data").getString("limit"));
                assertEquals(3, err.getJsonObject("data").getInteger("max"));
                assertTrue(err.getString("message").startsWith("too many connections: uid "), line);
                assertTrue(RawLines.atEof(sock, 10_000), "the surplus connection is closed");
            } finally {
                Posix.close(sock);
            }
            // the refusal is counted by code and limit, and the journal says who was refused and why
            String metrics = open.get(1).request("server.metrics").getString("text");
            assertEquals(1.0, Prometheus.sample(metrics, "vfio_export_connections_refused_total{code=\"-32005\",limit=\"max_connections_per_uid\"}"), metrics);
            assertEquals(0.0, Prometheus.sample(metrics, "vfio_export_connections_refused_total{code=\"-32005\",limit=\"RLIMIT_NOFILE\"}"), metrics);
            JsonArray records = open.get(1).request("audit.query", new JsonObject()).getJsonArray("records");
            List<JsonObject> refused = records.stream().map(JsonObject.class::cast)
                    .filter(r -> "connection.refused".equals(r.getString("event"))).toList();
            assertEquals(1, refused.size(), records.encodePrettily());
            JsonObject r = refused.get(0);
            assertEquals("max_connections_per_uid", r.getString("limit"), r.encode());
            assertEquals(ProcessHandle.current().pid(), r.getLong("pid"), r.encode());
            assertEquals(org.vfioexport.client.SocketPath.currentUid(), r.getInteger("uid"), r.encode());
            assertEquals(false, r.getBoolean("ok"), r.encode());
            assertEquals(-32005, r.getJsonObject("error").getInteger("code"), r.encode());
            assertTrue(r.getJsonObject("error").getString("message").startsWith("too many connections"), r.encode());
            // the first three still work, and closing one makes room
            assertEquals(2, open.get(0).request("device.list").getJsonArray("devices").size());
            open.remove(0).close();
            awaitConnections(d, 2);
            try (VfioExportClient again = d.connect()) {
                assertEquals(2, again.request("device.list").getJsonArray("devices").size());
            }
            for (VfioExportClient c : open) c.close();
        }
    }

    @Test
    void exportsPerUidAreCountedOverAllConnections() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_exports_per_uid", 3));
             VfioExportClient a = d.connect(); VfioExportClient b = d.connect()) {
            ExportedBuffer a1 = a.export(NVME, 2, 0, 4096);
            ExportedBuffer a2 = a.export(NVME, 2, 4096, 4096);
            ExportedBuffer b1 = b.export(GPU, 2, 0, 4096);
            RpcError e = assertThrows(RpcError.class, () -> b.export(GPU, 2, 4096, 4096));
            assertEquals(-32005, e.code());
            assertEquals("max_exports_per_uid", e.data().getString("limit"));
            assertEquals(3, e.data().getInteger("max"));
            assertTrue(e.getMessage().contains("over all its connections"), e.getMessage());
            assertEquals(3, b.request("server.info").getInteger("exports"), "the refused export was never made");
            // a release on one connection makes room on the other
            a.request("export.release", new JsonObject().put("export_id", a1.id()));
            ExportedBuffer b2 = b.export(GPU, 2, 4096, 4096);
            // a connection that goes away gives back its exports
            a.close();
            awaitExports(b, 2);
            // the uid's slot comes back when the daemon has closed its reference, just after the device's count drops
            UserAccounts.Account account = d.daemon().service().accounts().of(uid());
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (account.exports() != 2) {
                assertTrue(System.nanoTime() < deadline, "the uid still holds " + account.exports() + " export slots");
                Thread.onSpinWait();
            }
            ExportedBuffer b3 = b.export(GPU, 2, 8192, 4096);
            for (ExportedBuffer x : List.of(a1, a2, b1, b2, b3)) x.fd().close();
        }
    }

    @Test
    void subscriptionsPerUidAreCountedOverAllConnections() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_subscriptions_per_uid", 2));
             VfioExportClient a = d.connect(); VfioExportClient b = d.connect()) {
            String s1 = a.request("events.subscribe").getString("subscription");
            b.request("events.subscribe");
            RpcError e = assertThrows(RpcError.class, () -> b.request("events.subscribe"));
            assertEquals(-32005, e.code());
            assertEquals("max_subscriptions_per_uid", e.data().getString("limit"));
            a.request("events.unsubscribe", new JsonObject().put("subscription", s1));
            b.request("events.subscribe");
            // closing b gives back its two
            b.close();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (true) {
                try {
                    a.request("events.subscribe");
                    break;
                } catch (RpcError refused) {
                    assertEquals(-32005, refused.code());
                    assertTrue(System.nanoTime() < deadline, "b's subscriptions were not given back");
                }
            }
        }
    }

    @Test
    void importersPerUidAreCountedOverAllConnections() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_importers_per_uid", 2));
             VfioExportClient a = d.connect(); VfioExportClient b = d.connect()) {
            ExportedBuffer ea = a.export(GPU, 2, 0, 4096), eb = b.export(GPU, 2, 4096, 4096);
            JsonObject onA = new JsonObject().put("export_id", ea.id()), onB = new JsonObject().put("export_id", eb.id());
            String i1 = a.request("importer.attach", onA).getString("importer_id");
            b.request("importer.attach", onB);
            RpcError e = assertThrows(RpcError.class, () -> b.request("importer.attach", onB));
            assertEquals(-32005, e.code());
            assertEquals("max_importers_per_uid", e.data().getString("limit"));
            assertEquals(2, e.data().getInteger("max"));
            a.request("importer.detach", new JsonObject().put("importer_id", i1));
            b.request("importer.attach", onB);
            // closing b detaches its two and gives their slots back
            b.close();
            long deadline = System.nanoTime() + 10_000_000_000L;
            int attached = 0;
            while (attached < 2) {
                try {
                    a.request("importer.attach", onA);
                    attached++;
                } catch (RpcError refused) {
                    assertEquals(-32005, refused.code());
                    assertTrue(System.nanoTime() < deadline, "b's importers were not given back");
                }
            }
            ea.fd().close();
            eb.fd().close();
        }
    }

    /**
     * Fds sent and not yet received count against the uid: a client that does not read is refused more, and once
     * it has read everything it may go on.
     */
    @Test
    void fdsInFlightPerUidAreBoundedUntilTheClientReads() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_fds_in_flight_per_uid", 4));
             VfioExportClient c = d.connect()) {
            JsonArray batch = new JsonArray();
            for (int i = 0; i < 4; i++) batch.add(exportRequest(100 + i, i));
            c.sendLine(batch.encode());
            // the batch's response (4 fds) has reached the client's socket: not read yet
            assertTrue(RawLines.awaitReadable(c.socket().intValue(), 10_000), "the batch's response never arrived");
            int batchBytes = c.socket().readableBytes();
            c.sendLine(exportRequest(200, 5).encode());
            // its answer arrives behind the unread batch: only then may the client read
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (c.socket().readableBytes() == batchBytes) {
                assertTrue(System.nanoTime() < deadline, "no answer to the fifth export.create");
                Thread.onSpinWait();
            }
            Message batchResponse = c.read(10_000);
            assertEquals(4, batchResponse.fds().length);
            for (Fd fd : batchResponse.fds()) fd.close();
            Message refused = c.read(10_000);
            JsonObject err = refused.object().getJsonObject("error");
            assertEquals(-32005, err.getInteger("code"), refused.object().encode());
            assertEquals("max_fds_in_flight_per_uid", err.getJsonObject("data").getString("limit"));
            assertEquals(0, refused.fds().length);
            // everything is read now: the daemon sees an empty send queue and forgets those four
            ExportedBuffer next = c.export(NVME, 2, 0x10000, 4096);
            next.fd().close();
        }
    }

    @Test
    void aBatchMayCarrySCM_MAX_FDExportsAndNotOneMore() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_exports_per_client", 600));
             VfioExportClient c = d.connect()) {
            Message ok = c.batch(exportBatch(253));
            assertEquals(253, ok.fds().length);
            for (Fd fd : ok.fds()) fd.close();
            for (int i = 0; i < 253; i++) {
                assertEquals(i, ok.array().getJsonObject(i).getJsonObject("result").getInteger("fd_index"));
            }
            Message refused = c.batch(exportBatch(254));
            assertTrue(refused.isObject(), "a refused batch is one error, not an array");
            JsonObject err = refused.object().getJsonObject("error");
            assertEquals(-32600, err.getInteger("code"));
            assertEquals("SCM_MAX_FD", err.getJsonObject("data").getString("limit"));
            assertEquals(253, err.getJsonObject("data").getInteger("max"));
            assertEquals(0, refused.fds().length);
            assertEquals(253, c.request("server.info").getInteger("exports"), "nothing of the refused batch ran");
        }
    }

    @Test
    void aBatchLongerThanMaxBatchIsRefusedWhole() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, policy("max_batch", 10)); VfioExportClient c = d.connect()) {
            JsonArray ten = new JsonArray();
            for (int i = 0; i < 10; i++) ten.add(1);
            assertEquals(10, c.batch(ten).array().size());
            Message refused = c.batch(ten.copy().add(1));
            JsonObject err = refused.object().getJsonObject("error");
            assertEquals(-32600, err.getInteger("code"));
            assertEquals("max_batch", err.getJsonObject("data").getString("limit"));
            assertEquals(10, err.getJsonObject("data").getInteger("max"));
        }
    }

    private static int uid() {
        try {
            return (Integer) java.nio.file.Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static JsonObject exportRequest(int id, int page) {
        return new JsonObject().put("jsonrpc", "2.0").put("id", id).put("method", "export.create")
                .put("params", new JsonObject().put("device", NVME).put("region", 2).put("offset", page * 4096L)
                        .put("length", 4096));
    }

    private static JsonArray exportBatch(int n) {
        JsonArray a = new JsonArray();
        for (int i = 0; i < n; i++) a.add(exportRequest(i, i));
        return a;
    }

    private static void awaitConnections(TestDaemon d, int n) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (d.daemon().service().sessions().size() != n) {
            assertTrue(System.nanoTime() < deadline, "sessions: " + d.daemon().service().sessions().size() + ", want " + n);
            Thread.onSpinWait();
        }
    }

    private static void awaitExports(VfioExportClient c, int n) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        int now;
        while ((now = c.request("server.info").getInteger("exports")) != n) {
            assertTrue(System.nanoTime() < deadline, "exports: " + now + ", want " + n);
        }
    }

    /** Byte-level reads on a raw client socket, for connections that never get a hello. */
    static final class RawLines {
        static String readLine(int sock, long timeoutMs) throws Exception {
            StringBuilder sb = new StringBuilder();
            byte[] b = new byte[1];
            long deadline = System.nanoTime() + timeoutMs * 1_000_000;
            while (true) {
                if (!awaitReadable(sock, Math.max(1, (deadline - System.nanoTime()) / 1_000_000))) {
                    throw new AssertionError("no complete line within " + timeoutMs + " ms: " + sb);
                }
                Posix.Received r = Posix.recvWithFds(sock, b, 1);
                if (r.length() == 0) throw new EOFException("EOF after " + sb);
                if (b[0] == '\n') return sb.toString();
                sb.append((char) b[0]);
            }
        }

        static boolean atEof(int sock, long timeoutMs) throws Exception {
            byte[] b = new byte[4096];
            long deadline = System.nanoTime() + timeoutMs * 1_000_000;
            while (awaitReadable(sock, Math.max(1, (deadline - System.nanoTime()) / 1_000_000))) {
                if (Posix.recvWithFds(sock, b, 1).length() == 0) return true;
            }
            return false;
        }

        static boolean awaitReadable(int sock, long timeoutMs) throws Exception {
            return (Posix.poll(sock, Posix.POLLIN, (int) timeoutMs) & (Posix.POLLIN | Posix.POLLHUP)) != 0;
        }
    }
}

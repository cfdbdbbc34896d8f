package org.vfioexport.app;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.Prometheus;
import org.vfioexport.testutil.Wait;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The listener at the fd limit: a daemon under RLIMIT_NOFILE 300 gets more connections than it has fds. Those it
 * cannot accept get one JSON-RPC error line (-32005) and a close, promptly; once they are gone it greets new
 * connections again, its fd count back where it was, with no exception on its stderr.
 */
class ListenerAtFdLimitTest {
    private static final int LIMIT = 300;
    private static final int CONNECTIONS = 350;
    private static final long ANSWER_WAIT_MS = 30_000;

    @TempDir
    Path dir;

    @Test
    void connectionsBeyondTheFdLimitAreTurnedAwayPolitelyAndTheListenerServesAgain() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/prlimit")), "needs prlimit (util-linux)");
        List<String> limit = List.of("/usr/bin/prlimit", "--nofile=" + LIMIT + ":" + LIMIT, "--");
        // the per-uid connection limit (a share of RLIMIT_NOFILE) would turn them away first: raised past the fd table
        try (DaemonProcess d = DaemonProcess.start(dir, c -> c.getJsonObject("policy").put("max_connections_per_uid", 1000),
                limit); VfioExportClient probe = d.connect()) {
            long base = baseline(d, probe);
            long refusedInAll = 0;
            for (int round = 1; round <= 2; round++) { // twice: the reserve fd is back after a shortage
                Answers a;
                try {
                    a = flood(d.socket(), CONNECTIONS);
                } catch (AssertionError e) {
                    throw new AssertionError("round " + round + ": " + e.getMessage() + "; stderr: " + d.stderr(), e);
                }
                String seen = "round " + round + ": " + a + "; stderr: " + d.stderr();
                assertEquals(CONNECTIONS, a.hellos + a.refusals + a.closedSilently, seen);
                assertTrue(a.hellos > 0 && a.refusals > 0, "some served, some turned away: " + seen);
                assertEquals(0, a.closedSilently, "every turned-away connection is told why: " + seen);
                refusedInAll += a.refusals;
                JsonObject error = a.refusal.getJsonObject("error");
                assertEquals(new JsonObject().put("jsonrpc", "2.0").putNull("id").put("error", new JsonObject()
                        .put("code", -32005).put("message", "server out of file descriptors; try again later")
                        .put("data", new JsonObject().put("limit", "fds").put("resource", "RLIMIT_NOFILE").put("max", LIMIT))),
                        a.refusal, error.encode());
                a.closeAll();
                Wait.untilEquals("round " + round + ": the daemon's fd count back to its baseline", 20_000, base,
                        d::fdCount);
                try (VfioExportClient c = d.connect()) {
                    assertEquals(d.pid(), c.hello().getLong("pid"), "greeted again after round " + round);
                    assertEquals(2, c.request("device.list").getJsonArray("devices").size());
                }
            }
            assertTrue(probe.request("server.info").containsKey("clients"), "the probe's connection survived");
            // each one turned away is counted by code and limit, and the journal says who (throttled per uid)
            String metrics = probe.request("server.metrics").getString("text");
            assertEquals((double) refusedInAll, Prometheus.sample(metrics,
                    "vfio_export_connections_refused_total{code=\"-32005\",limit=\"RLIMIT_NOFILE\"}"), metrics);
            List<JsonObject> refused = probe.request("audit.query", new JsonObject()).getJsonArray("records").stream()
                    .map(JsonObject.class::cast).filter(r -> "connection.refused".equals(r.getString("event"))).toList();
            assertFalse(refused.isEmpty(), "the refusals are in the audit journal");
            for (JsonObject r : refused) {
                assertEquals("RLIMIT_NOFILE", r.getString("limit"), r.encode());
                assertEquals(ProcessHandle.current().pid(), r.getLong("pid"), r.encode());
                assertEquals(-32005, r.getJsonObject("error").getInteger("code"), r.encode());
            }
            // one record per uid per second, each counting those suppressed before it (the last ones wait for the
            // next record): never more than happened
            long recorded = refused.stream().mapToLong(r -> 1 + r.getLong("suppressed", 0L)).sum();
            assertTrue(recorded <= refusedInAll, recorded + " recorded of " + refusedInAll + ": " + refused);
            String err = d.stderr();
            assertFalse(err.contains("NoClassDefFoundError") || err.contains("Exception in thread")
                    || err.contains("ERROR") || err.contains("exceptionCaught"), err);
            long warnings = err.lines().filter(l -> l.contains("WARN  AcceptGuard - out of file descriptors")).count();
            assertTrue(warnings >= 1 && warnings <= 2, "one rate-limited warning per shortage at most: " + err);
        }
    }

    /** The daemon's fd count at rest, after a few connections came and went, with only the probe connected. */
    private static long baseline(DaemonProcess d, VfioExportClient probe) throws Exception {
        List<VfioExportClient> warm = new ArrayList<>();
        for (int i = 0; i < 8; i++) warm.add(d.connect());
        for (VfioExportClient c : warm) c.close();
        Wait.untilEquals("warm-up connections to close", 10_000, 1, () -> {
            try {
                return probe.request("server.info").getInteger("clients");
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        return d.fdCount();
    }

    /** What {@code n} connections opened at once got as their first line, read with one bounded wait. */
    private static Answers flood(Path socket, int n) throws IOException {
        Answers a = new Answers();
        try {
            read(socket, n, a);
        } catch (IOException | RuntimeException | Error e) {
            a.closeAll();
            throw e;
        }
        return a;
    }

    private static void read(Path socket, int n, Answers a) throws IOException {
        try (Selector selector = Selector.open()) {
            for (int i = 0; i < n; i++) {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                a.channels.add(ch);
                ch.connect(UnixDomainSocketAddress.of(socket)); // the backlog holds them: connect does not wait
                ch.configureBlocking(false);
                ch.register(selector, SelectionKey.OP_READ, new ByteArrayOutputStream());
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ANSWER_WAIT_MS);
            ByteBuffer buf = ByteBuffer.allocate(4096);
            int open = n;
            while (open > 0) {
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    throw new AssertionError(open + " of " + n + " connections got no answer within "
                            + ANSWER_WAIT_MS + " ms (" + a + ")");
                }
                selector.select(left);
                for (SelectionKey k : selector.selectedKeys()) {
                    if (firstLine(k, buf, a)) {
                        k.cancel();
                        open--;
                    }
                }
                selector.selectedKeys().clear();
            }
        }
    }

    /** Reads what {@code k}'s connection has; true once its first line (or its end) is in. */
    private static boolean firstLine(SelectionKey k, ByteBuffer buf, Answers a) {
        ByteArrayOutputStream got = (ByteArrayOutputStream) k.attachment();
        int r;
        try {
            buf.clear();
            r = ((SocketChannel) k.channel()).read(buf);
        } catch (IOException e) {
            r = -1; // reset: closed without a line
        }
        if (r > 0) got.write(buf.array(), 0, r);
        String s = got.toString(StandardCharsets.UTF_8);
        int nl = s.indexOf('\n');
        if (nl >= 0) {
            JsonObject line = new JsonObject(s.substring(0, nl));
            if ("hello".equals(line.getString("method"))) {
                a.hellos++;
            } else {
                a.refusals++;
                a.refusal = line;
            }
            return true;
        }
        if (r < 0) {
            a.closedSilently++;
            return true;
        }
        return false;
    }

    private static final class Answers {
        final List<SocketChannel> channels = new ArrayList<>();
        int hellos, refusals, closedSilently;
        JsonObject refusal;

        void closeAll() throws IOException {
            for (SocketChannel ch : channels) ch.close();
        }

        @Override
        public String toString() {
            return hellos + " greeted, " + refusals + " refused, " + closedSilently + " closed without a line";
        }
    }
}

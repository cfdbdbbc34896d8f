package org.vfioexport.cluster;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.Wait;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * Three daemons on loopback as one fleet, as real processes: they join, a subscriber on A follows B's devices in
 * order, A resets B's device, C is SIGKILLed (node.left within the documented bound, its exports shown gone) and
 * comes back (node.joined).
 */
class FleetClusterTest {
    private static final long START_MS = 120_000; // three JVMs starting Hazelcast at once on two busy cores
    private static final long FAILURE_TIMEOUT_MS = 3000;

    @TempDir
    Path dir;

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private DaemonProcess spawn(String node, int port, List<String> members, JsonObject extra) {
        Path sock = dir.resolve(node + ".sock");
        return DaemonProcess.spawn(dir, sock, c -> {
            c.remove("audit");
            JsonObject cluster = new JsonObject().put("enabled", true).put("node", node).put("name", "fleet-test")
                    .put("port", port).put("members", new JsonArray(members))
                    .put("failure_timeout_ms", FAILURE_TIMEOUT_MS).put("join_timeout_ms", 60_000)
                    .put("request_timeout_ms", 20_000);
            cluster.mergeIn(extra);
            c.put("cluster", cluster);
            c.getJsonObject("policy").put("max_subscriptions_per_uid", 3);
        });
    }

    private static void listening(DaemonProcess d) {
        d.awaitLine("vfio-exportd: listening on " + d.socket(), START_MS);
    }

    private static List<String> up(VfioExportClient c) throws Exception {
        List<String> out = new ArrayList<>();
        JsonArray nodes = c.request("fleet.nodes").getJsonArray("nodes");
        for (int i = 0; i < nodes.size(); i++) {
            if ("up".equals(nodes.getJsonObject(i).getString("state"))) out.add(nodes.getJsonObject(i).getString("node"));
        }
        return out.stream().sorted().toList();
    }

    /** The next fleet event matching {@code wanted}, skipping others (other devices, other nodes). */
    private static JsonObject next(VfioExportClient c, Predicate<JsonObject> wanted, long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
            JsonObject e = c.nextEvent(left);
            if (wanted.test(e)) return e;
        }
    }

    private static Predicate<JsonObject> of(String node, String device) {
        return e -> node.equals(e.getString("node")) && device.equals(e.getString("device"));
    }

    /** A reset's events on one device with one export, in order, each seq the one after the last. */
    private static long assertReset(VfioExportClient sub, String node, String device, long lastSeq) throws IOException {
        return assertEvents(sub, node, device, lastSeq, "device.state:resetting", "export.revoked", "export.restored",
                "device.state:ready");
    }

    private static long assertEvents(VfioExportClient sub, String node, String device, long lastSeq, String... expected)
            throws IOException {
        for (String want : expected) {
            JsonObject e = next(sub, of(node, device), 30_000);
            String got = e.getString("type") + (e.getString("type").equals("device.state") ? ":" + e.getString("state") : "");
            assertEquals(want, got, "event " + e);
            assertEquals(lastSeq + 1, e.getLong("seq"), "gap-free seq: " + e);
            lastSeq = e.getLong("seq");
        }
        return lastSeq;
    }

    @Test
    void threeNodesJoinFollowResetForwardLoseAndRegainANode() throws Exception {
        int pa = freePort(), pb = freePort(), pc = freePort();
        List<String> members = List.of("127.0.0.1:" + pa, "127.0.0.1:" + pb, "127.0.0.1:" + pc);
        JsonObject noFleetAccess = new JsonObject().put("allow_uids", new JsonArray()).put("allow_daemon_user", false);
        DaemonProcess a = spawn("a", pa, members, new JsonObject());
        DaemonProcess b = spawn("b", pb, members, new JsonObject());
        DaemonProcess c = spawn("c", pc, members, noFleetAccess);
        try (a; b) {
            try {
                listening(a);
                listening(b);
                listening(c);
            } catch (AssertionError e) {
                c.close();
                throw e;
            }
            try (VfioExportClient ca = a.connect(); VfioExportClient cb = b.connect(); VfioExportClient cc = c.connect()) {
                Wait.untilEquals("every node up in A's view", 60_000, List.of("a", "b", "c"), () -> call(() -> up(ca)));
                Wait.untilEquals("every node up in B's view", 60_000, List.of("a", "b", "c"), () -> call(() -> up(cb)));
                // the fleet permission is its own: C's clients are allowed by the policy but not for fleet methods
                RpcError denied = assertThrows(RpcError.class, () -> cc.request("fleet.nodes"));
                assertEquals(-32003, denied.code());
                assertEquals(2, cc.request("device.list").getJsonArray("devices").size(), "the connection stays usable");

                // a subscriber on A sees B's export and reset, in order, with gap-free per-device seq
                JsonObject sub = ca.request("events.subscribe", new JsonObject().put("fleet", true));
                assertTrue(sub.getString("subscription").startsWith("fleet-sub-"), sub.encode());
                String exportB = cb.export(NVME, 2, 0, 4096).id();
                JsonObject created = next(ca, of("b", NVME), 30_000);
                assertEquals("export.created", created.getString("type"));
                assertEquals(exportB, created.getString("export_id"));
                cb.request("device.reset", new JsonObject().put("device", NVME));
                long seq = assertReset(ca, "b", NVME, created.getLong("seq"));

                // fleet.reset from A for B's device: B's result, B's events, then B's own errors as a local call has
                JsonObject r = ca.request("fleet.reset", new JsonObject().put("node", "b").put("device", NVME));
                assertEquals("b", r.getString("node"));
                assertEquals(1, r.getInteger("revoked"));
                assertReset(ca, "b", NVME, seq);
                RpcError unknown = assertThrows(RpcError.class, () -> ca.request("fleet.reset",
                        new JsonObject().put("node", "b").put("device", "0000:99:00.0")));
                assertEquals(-32001, unknown.code());
                assertEquals("b", unknown.data().getString("node"));
                RpcError noNode = assertThrows(RpcError.class, () -> ca.request("fleet.set_memory",
                        new JsonObject().put("node", "zz").put("device", GPU).put("enabled", false)));
                assertEquals(-32001, noNode.code());
                JsonObject m = ca.request("fleet.set_memory", new JsonObject().put("node", "b").put("device", GPU)
                        .put("enabled", false));
                assertEquals(false, m.getBoolean("memory_enabled"));

                // fleet subscriptions count against the per-uid limit (3 here): this one and two more
                try (VfioExportClient more = a.connect()) {
                    String s2 = more.request("events.subscribe", new JsonObject().put("fleet", true)).getString("subscription");
                    more.request("events.subscribe");
                    RpcError quota = assertThrows(RpcError.class, () -> more.request("events.subscribe",
                            new JsonObject().put("fleet", true)));
                    assertEquals(-32005, quota.code());
                    more.request("events.unsubscribe", new JsonObject().put("subscription", s2));
                    more.request("events.subscribe", new JsonObject().put("fleet", true));
                }

                // C's export is in A's view; C dies: node.left within the bound, its export shown gone
                String exportC = cc.export(GPU, 0, 0, 4096).id();
                Wait.until("C's export in A's fleet view", 30_000, () -> call(() -> exportState(ca, "c", exportC)) != null);
                long leaveBound = ClusterSettings.fromConfig(new JsonObject().put("enabled", true).put("node", "x")
                        .put("failure_timeout_ms", FAILURE_TIMEOUT_MS)).leaveBoundMs();
                long killed = System.nanoTime();
                c.kill();
                JsonObject left = next(ca, e -> "node.left".equals(e.getString("type")), leaveBound + 30_000);
                long leftMs = (System.nanoTime() - killed) / 1_000_000;
                System.out.println("fleet: node.left " + leftMs + " ms after SIGKILL (bound " + leaveBound + " ms)");
                assertEquals("c", left.getString("node"));
                assertEquals(new JsonArray().add(NVME).add(GPU), left.getJsonArray("devices"));
                assertTrue(leftMs <= leaveBound, "node.left after " + leftMs + " ms, bound " + leaveBound + " ms");
                assertEquals("gone", exportState(ca, "c", exportC));
                assertEquals(List.of("a", "b"), up(ca));
                RpcError gone = assertThrows(RpcError.class, () -> ca.request("fleet.reset",
                        new JsonObject().put("node", "c").put("device", NVME)));
                assertEquals(-32006, gone.code());
            }

            // C comes back under its name: announced with its devices, reachable again
            try (DaemonProcess c2 = spawn("c", pc, members, noFleetAccess); VfioExportClient ca = a.connect()) {
                ca.request("events.subscribe", new JsonObject().put("fleet", true));
                listening(c2);
                JsonObject joined = next(ca, e -> "node.joined".equals(e.getString("type")), 60_000);
                assertEquals("c", joined.getString("node"));
                assertEquals(new JsonArray().add(NVME).add(GPU), joined.getJsonArray("devices"));
                assertEquals(List.of("a", "b", "c"), up(ca));
                JsonObject r = ca.request("fleet.reset", new JsonObject().put("node", "c").put("device", NVME));
                assertEquals(0, r.getInteger("revoked"));
                assertEvents(ca, "c", NVME, 0, "device.state:resetting", "device.state:ready");
            }
        }
    }

    /** The state A's fleet view gives {@code exportId} of {@code node}, or null if it is not there. */
    private static String exportState(VfioExportClient c, String node, String exportId) throws Exception {
        JsonArray all = c.request("fleet.exports", new JsonObject().put("node", node)).getJsonArray("exports");
        for (int i = 0; i < all.size(); i++) {
            JsonObject e = all.getJsonObject(i);
            if (exportId.equals(e.getString("export_id"))) return e.getString("state");
        }
        return null;
    }

    private interface Call<T> {
        T get() throws Exception;
    }

    private static <T> T call(Call<T> c) {
        try {
            return c.get();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * A client playing a peer-to-peer importer (an RDMA NIC, iommufd) over the socket, against the simulated kernel:
 * attach, map, invalidation on revoke and restore, map refused with ENODEV while revoked, detach at session end.
 */
class ImporterTest {
    private static final long WAIT = 10_000;
    @TempDir
    static Path dir;
    static TestDaemon daemon;

    @BeforeAll
    static void start() {
        daemon = TestDaemon.start(dir);
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    private static JsonObject id(String importer) {
        return new JsonObject().put("importer_id", importer);
    }

    @Test
    @DisplayName("map works while live, is refused with ENODEV while revoked, and the importer hears each invalidation")
    void revokeAndRestore() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0, 0x2000);
            String imp = c.request("importer.attach", new JsonObject().put("export_id", b.id())).getString("importer_id");
            assertEquals(1, c.request("importer.map", id(imp)).getInteger("mapped"));

            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false));
            JsonObject inv = c.nextNotification("importer.invalidated", WAIT);
            assertEquals(imp, inv.getString("importer_id"));
            assertEquals(b.id(), inv.getString("export_id"));
            assertEquals(0, inv.getInteger("mapped"), "a well-behaved importer unmaps when told");
            RpcError revoked = assertThrows(RpcError.class, () -> c.request("importer.map", id(imp)));
            assertEquals(-32000, revoked.code());
            assertEquals("ENODEV", revoked.data().getString("name"));

            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));
            c.nextNotification("importer.invalidated", WAIT);
            assertEquals(1, c.request("importer.map", id(imp)).getInteger("mapped"));
            assertEquals(0, c.request("importer.unmap", id(imp)).getInteger("mapped"));
            RpcError notMapped = assertThrows(RpcError.class, () -> c.request("importer.unmap", id(imp)));
            assertEquals(-32602, notMapped.code());
            assertTrue(c.request("importer.detach", id(imp)).getBoolean("detached"));
            RpcError gone = assertThrows(RpcError.class, () -> c.request("importer.detach", id(imp)));
            assertEquals(-32602, gone.code());
            assertEquals("importer_id", gone.data().getString("field"));
            b.fd().close();
        }
    }

    @Test
    @DisplayName("an importer that keeps its mapping through a revoke (6.19) is told so and unmaps itself")
    void importerThatDoesNotUnmap() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0x4000, 0x1000);
            String imp = c.request("importer.attach", new JsonObject().put("export_id", b.id())
                    .put("unmap_on_invalidate", false)).getString("importer_id");
            c.request("importer.map", id(imp));
            c.request("device.reset", new JsonObject().put("device", NVME));
            assertEquals(1, c.nextNotification("importer.invalidated", WAIT).getInteger("mapped"), "revoke");
            assertEquals(1, c.nextNotification("importer.invalidated", WAIT).getInteger("mapped"), "restore");
            assertEquals(0, c.request("importer.unmap", id(imp)).getInteger("mapped"));
            b.fd().close();
        }
    }

    @Test
    @DisplayName("importer.get reports the state: unmapped, mapped, revoked while memory is off, mapped again")
    void importerGetReportsTheState() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0x6000, 0x1000);
            JsonObject attached = c.request("importer.attach", new JsonObject().put("export_id", b.id())
                    .put("unmap_on_invalidate", false));
            assertEquals(false, attached.getBoolean("remaps_on_restore"), "the simulated importer maps when asked");
            String imp = attached.getString("importer_id");
            JsonObject fresh = c.request("importer.get", id(imp));
            assertEquals("unmapped", fresh.getString("state"));
            assertEquals(0, fresh.getInteger("invalidations"));
            assertEquals(false, fresh.containsKey("iova"), "a simulated importer has no IO address space");
            assertEquals("mapped", c.request("importer.map", id(imp)).getString("state"));
            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false));
            assertEquals("revoked", c.nextNotification("importer.invalidated", WAIT).getString("state"));
            JsonObject revoked = c.request("importer.get", id(imp));
            assertEquals("revoked", revoked.getString("state"));
            assertEquals(1, revoked.getInteger("mapped"));
            assertEquals(1, revoked.getInteger("invalidations"));
            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));
            c.nextNotification("importer.invalidated", WAIT);
            assertEquals("mapped", c.request("importer.get", id(imp)).getString("state"));
            RpcError unknown = assertThrows(RpcError.class, () -> c.request("importer.get", id("imp-999")));
            assertEquals(-32602, unknown.code());
            assertEquals("importer_id", unknown.data().getString("field"));
            RpcError extra = assertThrows(RpcError.class,
                    () -> c.request("importer.get", id(imp).put("verbose", true)));
            assertEquals(-32602, extra.code());
            b.fd().close();
        }
    }

    @Test
    @DisplayName("attach to a revoked export is ENODEV; to another client's export -32002")
    void attachRefusals() throws Exception {
        try (VfioExportClient c = daemon.connect(); VfioExportClient other = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0x8000, 0x1000);
            RpcError notMine = assertThrows(RpcError.class,
                    () -> other.request("importer.attach", new JsonObject().put("export_id", b.id())));
            assertEquals(-32002, notMine.code());
            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false));
            try {
                RpcError revoked = assertThrows(RpcError.class,
                        () -> c.request("importer.attach", new JsonObject().put("export_id", b.id())));
                assertEquals("ENODEV", revoked.data().getString("name"));
            } finally {
                c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));
            }
            b.fd().close();
        }
    }

    @Test
    @DisplayName("importers are detached when their connection ends, so the kernel releases the buffer")
    void sessionEndDetaches() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0x10000, 0x1000);
            String imp = c.request("importer.attach", new JsonObject().put("export_id", b.id())).getString("importer_id");
            c.request("importer.map", id(imp));
            b.fd().close();
        }
        // the session's end releases the export and detaches the importer: nothing holds the kernel buffer
        long deadline = System.nanoTime() + WAIT * 1_000_000;
        while (!daemon.kernel().device(NVME).listed().isEmpty()) {
            assertTrue(daemon.kernel().deferred().drain(WAIT), "deferred releases did not run");
            if (System.nanoTime() > deadline) throw new AssertionError("kernel buffers left: " + daemon.kernel().device(NVME).listed());
            try (VfioExportClient probe = daemon.connect()) {
                probe.request("server.info");   // a round trip: lets the daemon finish the session's releases
            }
        }
    }
}

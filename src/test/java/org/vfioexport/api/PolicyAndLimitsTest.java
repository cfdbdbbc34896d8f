package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.events.Cause;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** Policy, quota, and the errors of devices that went away and of a server that is stopping. */
class PolicyAndLimitsTest {
    @TempDir
    Path dir;

    @Test
    void socketIsCreatedWithMode0660() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir)) {
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(d.socket())));
        }
    }

    @Test
    void exportQuotaPerClientIsMinus32005() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.getJsonObject("policy").put("max_exports_per_client", 2));
             VfioExportClient a = d.connect(); VfioExportClient b = d.connect()) {
            ExportedBuffer x = a.export(NVME, 2, 0, 4096);
            ExportedBuffer y = a.export(NVME, 2, 4096, 4096);
            RpcError e = assertThrows(RpcError.class, () -> a.export(NVME, 2, 8192, 4096));
            assertEquals(-32005, e.code());
            assertEquals("max_exports_per_client", e.data().getString("limit"));
            assertEquals(2, e.data().getInteger("max"));
            assertTrue(e.getMessage().contains("max_exports_per_client"), e.getMessage());
            // the quota is per client: another connection still may
            ExportedBuffer z = b.export(NVME, 2, 8192, 4096);
            // releasing makes room again
            a.request("export.release", new JsonObject().put("export_id", x.id()));
            ExportedBuffer w = a.export(NVME, 2, 8192, 4096);
            for (Fd fd : new Fd[] {x.fd(), y.fd(), z.fd(), w.fd()}) fd.close();
        }
    }

    @Test
    void clientOutsideThePolicyIsMinus32003AndSeesNoDevice() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.put("policy", new JsonObject().put("allow_uids", new JsonArray())
                .put("allow_gids", new JsonArray()).put("allow_daemon_user", false)));
             VfioExportClient c = d.connect(); VfioExportClient c2 = d.connect()) {
            // discovery stays possible
            assertEquals(d.daemon().service().methods().names(), c.request("rpc.methods").getJsonArray("methods").getList());
            RpcError e = assertThrows(RpcError.class, () -> c.request("device.list"));
            assertEquals(-32003, e.code());
            assertTrue(e.getMessage().startsWith("permission denied: uid "), e.getMessage());
            // a refused client is not served further: the daemon closed the connection after the error
            assertThrows(java.io.IOException.class, () -> c.request("rpc.methods"));
            assertEquals(-32003, assertThrows(RpcError.class, () -> c2.export(NVME, 2, 0, 4096)).code());
        }
    }

    @Test
    void closedDeviceIsMinus32006() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir); VfioExportClient c = d.connect()) {
            ExportedBuffer x = c.export(GPU, 0, 0, 4096);
            d.daemon().service().devices().get(GPU).close(Cause.DEVICE_CLOSE).await(10, TimeUnit.SECONDS);
            RpcError e = assertThrows(RpcError.class, () -> c.export(GPU, 0, 0, 4096));
            assertEquals(-32006, e.code());
            assertEquals(GPU, e.data().getString("device"));
            assertEquals(-32006, assertThrows(RpcError.class,
                    () -> c.request("device.reset", new JsonObject().put("device", GPU))).code());
            // the device released the export itself: it is no longer the client's
            assertEquals(-32002, assertThrows(RpcError.class,
                    () -> c.request("export.get", new JsonObject().put("export_id", x.id()))).code());
            assertEquals("closed", c.request("device.get", new JsonObject().put("device", GPU)).getString("state"));
            x.fd().close();
        }
    }

    @Test
    void aBugInAMethodIsMinus32603AndTheConnectionLivesOn() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir)) {
            d.daemon().service().methods().register("test.bug", (s, p) -> {
                throw new IllegalStateException("a bug");
            });
            try (VfioExportClient c = d.connect()) {
                RpcError e = assertThrows(RpcError.class, () -> c.request("test.bug"));
                assertEquals(-32603, e.code());
                assertTrue(e.getMessage().startsWith("internal error: "), e.getMessage());
                assertEquals(2, c.request("device.list").getJsonArray("devices").size());
            }
        }
    }

    @Test
    void requestsDuringShutdownAreMinus32007() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir); VfioExportClient c = d.connect()) {
            d.daemon().service().beginShutdown();
            RpcError e = assertThrows(RpcError.class, () -> c.request("device.list"));
            assertEquals(-32007, e.code());
            assertEquals("server shutting down", e.getMessage());
        }
    }
}

package org.vfioexport.app;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.DaemonProcess;

import java.io.EOFException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/** SIGTERM stops the daemon promptly whatever its clients do, and the well-behaved ones hear everything, then EOF. */
class ShutdownTest {
    @TempDir
    Path dir;

    @Test
    void aClientThatStoppedReadingDoesNotHoldTheStop() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir)) {
            // a client that floods and never reads: the daemon holds output for it and has stopped reading it
            VfioExportClient stalled = d.connect();
            StringBuilder batch = new StringBuilder("[1");
            for (int i = 1; i < 1000; i++) batch.append(",1");
            byte[] line = batch.append("]\n").toString().getBytes(StandardCharsets.US_ASCII);
            Thread flood = new Thread(() -> {
                try {
                    for (int i = 0; i < 500; i++) stalled.sendRaw(line);
                } catch (Exception ignored) {
                    // the daemon went away under it: expected
                }
            });
            flood.setDaemon(true);
            flood.start();
            // a well-behaved client holding an export, subscribed to its device
            VfioExportClient good = d.connect();
            good.request("events.subscribe", new JsonObject().put("devices", new io.vertx.core.json.JsonArray().add(NVME)));
            ExportedBuffer x = good.export(NVME, 2, 0, 4096);
            x.fd().close();
            assertEquals("export.created", good.nextEvent(10_000).getString("type"));

            long t0 = System.nanoTime();
            int code = d.terminate(10_000);
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertEquals(0, code, d.stderr());
            assertTrue(millis < 5_000, "stopping took " + millis + " ms with a client that does not read");

            // the good client gets the release of its export, then a clean end of stream (no ECONNRESET)
            List<String> seen = new ArrayList<>();
            // a device close revokes, then releases
            assertEquals("export.revoked", good.nextEvent(10_000).getString("type"));
            JsonObject released = good.nextEvent(10_000);
            assertEquals("export.released", released.getString("type"));
            assertEquals("shutdown", released.getString("cause"));
            assertThrows(EOFException.class, () -> {
                while (true) {
                    Message m = good.read(10_000);
                    seen.add(m.json().toString());
                }
            }, () -> "after " + seen);
            stalled.close();
            good.close();
        }
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.TestDaemon;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A client that sends without reading cannot make the daemon buffer without bound: once its output is over
 * {@code max_output_bytes_per_client} the daemon stops reading it, and once the client reads, every line it sent
 * is answered.
 */
class BackPressureTest {
    private static final int MAX_OUTPUT = 256 * 1024;
    private static final int LINES = 2000;

    @TempDir
    Path dir;

    @Test
    void aClientThatDoesNotReadIsNotReadEither() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.getJsonObject("policy").put("max_output_bytes_per_client", MAX_OUTPUT));
             VfioExportClient c = d.connect()) {
            // each line: a batch of 1000 numbers, answered by 1000 errors (about 110 KB)
            StringBuilder batch = new StringBuilder("[1");
            for (int i = 1; i < 1000; i++) batch.append(",1");
            byte[] line = batch.append("]\n").toString().getBytes(StandardCharsets.US_ASCII);
            CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
                try {
                    for (int i = 0; i < LINES; i++) c.sendRaw(line);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            Session session = d.daemon().service().sessions().iterator().next();
            Session.Load load = awaitPaused(session);
            // one line's answer may overshoot the bound: it is written whole before the pause takes effect
            long oneAnswer = 1000L * 120;
            assertTrue(load.pendingOutputBytes() <= MAX_OUTPUT + oneAnswer + 64 * 1024,
                    "the daemon holds " + load.pendingOutputBytes() + " bytes for a client that does not read");
            assertFalse(sender.isDone(), "every line went through although the daemon stopped reading");
            // the client reads at last: every line is answered, in order, and the sender finishes
            for (int i = 0; i < LINES; i++) {
                Message m = c.read(30_000);
                assertEquals(1000, m.array().size(), "answer " + i);
                assertEquals(-32600, m.array().getJsonObject(0).getJsonObject("error").getInteger("code"));
            }
            sender.get(30, TimeUnit.SECONDS);
            JsonObject info = c.request("server.info");
            assertEquals(1, info.getInteger("clients"));
        }
    }

    private static Session.Load awaitPaused(Session s) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            Session.Load l = s.load().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            if (l.inputPaused()) return l;
            assertTrue(System.nanoTime() < deadline, "the daemon never stopped reading a client that does not read: " + l);
        }
    }
}

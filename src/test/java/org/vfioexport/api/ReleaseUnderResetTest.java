package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.events.Cause;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.events.EventType;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The scenario over the socket: clients export and release 4 KiB of 0000:01:00.0 BAR2 in a loop while
 * another client resets the device; a subscriber's stream must be linearizable: every export live at a
 * {@code device.state resetting} is revoked or released before that reset's first restore (guarantee 7 of
 * docs/protocol.md), besides every other rule {@link EventInvariants} checks. The check holds whatever the timing;
 * the timing only decides how many releases land inside a reset (the deterministic cases are
 * {@code ReleaseLinearizationTest} and {@code DeviceVerticleTest} T1/T2).
 */
class ReleaseUnderResetTest {
    private static final int CLIENTS = 8, RESETS = 8;
    private static final long PG = 4096;

    @TempDir
    Path dir;
    TestDaemon daemon;

    @BeforeEach
    void start() {
        // room for every event of the run: the subscriber reads them at the end, and a gap would hide the rule
        daemon = TestDaemon.start(dir, c -> c.getJsonObject("policy").put("subscriber_queue", 1_000_000));
    }

    @AfterEach
    void stop() {
        if (daemon != null) daemon.close();
    }

    @Test
    void exportsLiveAtAResetAreRevokedOrReleasedBeforeItsFirstRestore() throws Exception {
        try (VfioExportClient sub = daemon.connect(); VfioExportClient resetter = daemon.connect()) {
            sub.request("events.subscribe", new JsonObject().put("devices", new JsonArray().add(NVME)));
            AtomicBoolean resetsDone = new AtomicBoolean();
            CountDownLatch allStarted = new CountDownLatch(CLIENTS);
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> clients = new ArrayList<>();
            for (int i = 0; i < CLIENTS; i++) {
                long offset = i * PG;
                clients.add(new Thread(() -> {
                    try {
                        exportAndRelease(offset, allStarted, resetsDone);
                    } catch (Throwable t) {
                        failures.add(t);
                        allStarted.countDown();
                    }
                }, "client-" + i));
            }
            clients.forEach(Thread::start);
            assertTrue(allStarted.await(20, TimeUnit.SECONDS), "every client made its first export");
            try {
                for (int r = 0; r < RESETS; r++) resetter.request("device.reset", new JsonObject().put("device", NVME));
            } finally {
                resetsDone.set(true);
            }
            for (Thread t : clients) {
                t.join(TimeUnit.SECONDS.toMillis(30));
                assertFalse(t.isAlive(), t.getName() + " did not finish");
            }
            assertTrue(failures.isEmpty(), "client failures: " + failures);

            long head = resetter.request("device.get", new JsonObject().put("device", NVME)).getLong("seq");
            EventInvariants inv = new EventInvariants();
            int resets = 0, releasedInsideAReset = 0;
            boolean inReset = false;
            for (long seq = 1; seq <= head; seq++) {
                Event e = event(sub.nextEvent(20_000));
                assertEquals(seq, e.seq(), "no gap: the subscriber's queue holds the whole run");
                inv.accept(e);
                if (e.type() == EventType.DEVICE_STATE) {
                    inReset = "resetting".equals(e.state());
                    if (inReset) resets++;
                }
                if (inReset && e.type() == EventType.EXPORT_RELEASED) releasedInsideAReset++;
            }
            assertTrue(inv.violations().isEmpty(), "the stream breaks the guarantees ("
                    + releasedInsideAReset + " releases took effect inside a reset): " + inv.violations());
            assertEquals(RESETS, resets);
            assertTrue(inv.unreleased(NVME).isEmpty(), "exports never released: " + inv.unreleased(NVME));
        }
    }

    /** One client: export 4 KiB, pipeline its release behind the next export, until the resets are done. */
    private void exportAndRelease(long offset, CountDownLatch started, AtomicBoolean resetsDone) throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            List<Object> releases = new ArrayList<>();
            boolean first = true;
            do {
                ExportedBuffer b = c.export(NVME, 2, offset, PG);
                b.fd().close();
                releases.add(c.send("export.release", new JsonObject().put("export_id", b.id())));
                if (first) started.countDown();
                first = false;
            } while (!resetsDone.get());
            for (Object id : releases) {
                JsonObject response = c.await(id).object();
                assertTrue(response.containsKey("result"), response.encode());
            }
        }
    }

    /** An {@code event} notification's params as an {@link Event}. */
    private static Event event(JsonObject o) {
        EventType type = Arrays.stream(EventType.values()).filter(t -> t.wire.equals(o.getString("type")))
                .findFirst().orElseThrow(() -> new AssertionError("unknown event type: " + o.encode()));
        String c = o.getString("cause");
        Cause cause = c == null ? null : Arrays.stream(Cause.values()).filter(x -> x.wire.equals(c)).findFirst()
                .orElseThrow(() -> new AssertionError("unknown cause: " + o.encode()));
        return new Event(o.getLong("seq", 0L), o.getString("device"), type, o.getString("export_id"), cause,
                Instant.parse(o.getString("time")), o.getString("state"), o.getLong("from_seq", 0L),
                o.getLong("to_seq", 0L));
    }
}

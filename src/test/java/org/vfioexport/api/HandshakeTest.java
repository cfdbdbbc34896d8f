package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The revocation handshake over the socket, under both schedulers of the device (message order, the service's;
 * the read-write lock, {@code discipline: lock}): a watcher is told {@code export.revoking} before a reset or a
 * memory-off revokes its export, and the operation goes on when it answers {@code export.quiesced}, when it goes
 * away, or when the deadline passes; the device answers other requests meanwhile. Deadlines that must not pass
 * are long (20 s, far beyond any bounded wait here), those that must pass are short; nothing sleeps.
 */
class HandshakeTest {
    private static final long WAIT = 20_000;
    /**
     * A deadline the tests never reach (beyond the client's 20 s timeout): the operation must go on because of
     * the answers alone, or the test fails on its bounded wait.
     */
    private static final long LONG = 25_000;

    @TempDir
    Path dir;

    private TestDaemon start(String discipline, Consumer<JsonObject> edit) {
        return TestDaemon.start(dir, c -> {
            c.put("discipline", discipline);
            c.put("handshake", new JsonObject().put("deadline_ms", 50).put("max_deadline_ms", 30_000));
            edit.accept(c);
        });
    }

    private static JsonObject export(String id) {
        return new JsonObject().put("export_id", id);
    }

    private static JsonObject reset(String device, long quiesceMs) {
        return new JsonObject().put("device", device).put("quiesce_ms", quiesceMs);
    }

    /** Reads a subscriber's events until (and including) the first {@code device.state} {@code state}. */
    private static List<JsonObject> eventsUntilState(VfioExportClient c, String state) throws Exception {
        List<JsonObject> out = new ArrayList<>();
        while (true) {
            JsonObject e = c.nextEvent(WAIT);
            out.add(e);
            if ("device.state".equals(e.getString("type")) && state.equals(e.getString("state"))) return out;
        }
    }

    /** Subscribes to NVME's events from seq 1 (so the invariants see each export's creation). */
    private static void subscribeFromTheStart(VfioExportClient c) throws Exception {
        c.request("events.subscribe", new JsonObject().put("devices", new JsonArray().add(NVME))
                .put("since", new JsonObject().put(NVME, 0)));
    }

    /** The events' types (with the state of a device.state), creations left out. */
    private static List<String> types(List<JsonObject> events) {
        return events.stream().filter(e -> !"export.created".equals(e.getString("type"))).map(e -> e.getString("type") + (e.containsKey("state") ? " " + e.getString("state") : "")).toList();
    }

    private static void checkInvariants(List<JsonObject> events) {
        EventInvariants inv = new EventInvariants();
        for (JsonObject e : events) inv.accept(Event.fromJson(e));
        assertTrue(inv.violations().isEmpty(), inv.violations().toString());
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("ack: revoking comes first, the device serves others while it waits, the quiesced answer lets the reset go on")
    void ack(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> { });
             VfioExportClient owner = d.connect(); VfioExportClient operator = d.connect();
             VfioExportClient other = d.connect()) {
            ExportedBuffer b = owner.export(NVME, 2, 0, 0x2000);
            assertEquals(new JsonObject().put("export_id", b.id()).put("watching", true),
                    owner.request("export.watch", export(b.id()).put("ack", true)));
            subscribeFromTheStart(operator);
            Object resetId = operator.send("device.reset", reset(NVME, LONG));

            JsonObject revoking = owner.nextNotification("export.revoking", WAIT);
            assertEquals(b.id(), revoking.getString("export_id"));
            assertEquals(NVME, revoking.getString("device"));
            assertEquals(LONG, revoking.getLong("deadline_ms"));

            // the device is waiting, without a thread: it answers, refuses a second reset, other devices export
            assertEquals("ready", other.request("device.get", new JsonObject().put("device", NVME)).getString("state"),
                    "during the handshake the export is still live: the device is not resetting yet");
            RpcError busy = assertThrows(RpcError.class, () -> other.request("device.reset", reset(NVME, 0)));
            assertEquals(-32004, busy.code());
            ExportedBuffer gpu = other.export(GPU, 0, 0, 0x1000);

            assertEquals(new JsonObject().put("export_id", b.id()).put("quiesced", true),
                    owner.request("export.quiesced", export(b.id())));
            JsonObject r = operator.await(resetId).object().getJsonObject("result");
            assertEquals(1, r.getInteger("revoked"), r.encode());
            assertEquals(1, r.getInteger("acked"), r.encode());
            assertEquals(0, r.getInteger("timed_out"), r.encode());
            assertTrue(r.getLong("quiesce_us") < LONG * 1000, r.encode());

            List<JsonObject> events = eventsUntilState(operator, "ready");
            assertEquals(List.of("export.revoking", "device.state resetting", "export.revoked", "export.restored",
                    "device.state ready"), types(events));
            assertEquals(revoking.getLong("seq"), events.get(1).getLong("seq"), "the notice names the event's seq");
            assertEquals(LONG, events.get(1).getLong("deadline_ms"));
            assertEquals(1, events.get(3).getInteger("acked"));
            assertEquals(0, events.get(3).getInteger("timed_out"));
            assertNull(events.get(4).getValue("acked"), "restores are announced as before");
            checkInvariants(events);

            // the reset's audit record keeps the handshake's outcome
            JsonArray records = operator.request("audit.query", new JsonObject().put("event", "device.reset")
                    .put("device", NVME)).getJsonArray("records");
            assertTrue(records.stream().map(JsonObject.class::cast).anyMatch(x -> Integer.valueOf(1).equals(x.getInteger("acked"))
                    && Integer.valueOf(0).equals(x.getInteger("timed_out"))), records.encode());

            // the answer is spent: a second one has no handshake to go to
            RpcError again = assertThrows(RpcError.class, () -> owner.request("export.quiesced", export(b.id())));
            assertEquals(-32008, again.code());
            assertEquals("no-handshake", again.data().getString("reason"));
            b.fd().close();
            gpu.fd().close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("timeout: a silent watcher holds the reset until the deadline and is counted timed out")
    void timeout(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> { });
             VfioExportClient owner = d.connect(); VfioExportClient operator = d.connect()) {
            ExportedBuffer watched = owner.export(NVME, 2, 0, 0x1000);
            ExportedBuffer unwatched = owner.export(NVME, 2, 0x1000, 0x1000);
            owner.request("export.watch", export(watched.id()));
            subscribeFromTheStart(operator);
            // no quiesce_ms: the configured deadline (50 ms)
            JsonObject r = operator.request("device.reset", new JsonObject().put("device", NVME));
            assertEquals(0, r.getInteger("acked"), r.encode());
            assertEquals(1, r.getInteger("timed_out"), r.encode());
            assertEquals(2, r.getInteger("revoked"), r.encode());
            assertTrue(r.getLong("quiesce_us") >= 50_000, "the reset went on before its deadline: " + r.encode());

            assertEquals(50, owner.nextNotification("export.revoking", WAIT).getLong("deadline_ms"));
            List<JsonObject> events = eventsUntilState(operator, "ready");
            checkInvariants(events);
            JsonObject revokedWatched = events.stream().filter(e -> "export.revoked".equals(e.getString("type"))
                    && watched.id().equals(e.getString("export_id"))).findFirst().orElseThrow();
            assertEquals(0, revokedWatched.getInteger("acked"));
            assertEquals(1, revokedWatched.getInteger("timed_out"));
            JsonObject revokedOther = events.stream().filter(e -> "export.revoked".equals(e.getString("type"))
                    && unwatched.id().equals(e.getString("export_id"))).findFirst().orElseThrow();
            assertNull(revokedOther.getValue("acked"), "an unwatched export's revoke carries no handshake fields");

            RpcError late = assertThrows(RpcError.class, () -> owner.request("export.quiesced", export(watched.id())));
            assertEquals(-32008, late.code());
            assertEquals("no-handshake", late.data().getString("reason"));
            watched.fd().close();
            unwatched.fd().close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("an owner that disconnects during the handshake counts as answered; its export is released, not revoked")
    void disconnectDuringTheHandshake(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> { }); VfioExportClient operator = d.connect()) {
            VfioExportClient owner = d.connect();
            ExportedBuffer b = owner.export(NVME, 2, 0, 0x1000);
            owner.request("export.watch", export(b.id()));
            subscribeFromTheStart(operator);
            Object resetId = operator.send("device.reset", reset(NVME, LONG));
            owner.nextNotification("export.revoking", WAIT);
            b.fd().close();
            owner.close();

            JsonObject r = operator.await(resetId).object().getJsonObject("result");
            assertEquals(1, r.getInteger("acked"), r.encode());
            assertEquals(0, r.getInteger("timed_out"), r.encode());
            assertEquals(0, r.getInteger("revoked"), "the owner's release took effect in the pass: " + r.encode());
            List<JsonObject> events = eventsUntilState(operator, "ready");
            assertEquals(List.of("export.revoking", "device.state resetting", "export.released", "device.state ready"),
                    types(events));
            assertEquals("session-end", events.get(3).getString("cause"));
            checkInvariants(events);
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("memory-off consults watchers too; memory-on restores as before; a release during the handshake answers it")
    void memoryOffAndRelease(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> { });
             VfioExportClient owner = d.connect(); VfioExportClient operator = d.connect()) {
            ExportedBuffer kept = owner.export(NVME, 2, 0, 0x1000);
            ExportedBuffer dropped = owner.export(NVME, 2, 0x1000, 0x1000);
            owner.request("export.watch", export(kept.id()));
            owner.request("export.watch", export(dropped.id()));
            subscribeFromTheStart(operator);
            Object off = operator.send("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false)
                    .put("quiesce_ms", LONG));
            owner.nextNotification("export.revoking", WAIT);
            owner.nextNotification("export.revoking", WAIT);
            owner.request("export.quiesced", export(kept.id()));
            owner.request("export.release", export(dropped.id()));   // releasing a watched export answers for it
            JsonObject r = operator.await(off).object().getJsonObject("result");
            assertEquals(2, r.getInteger("acked"), r.encode());
            assertEquals(0, r.getInteger("timed_out"), r.encode());
            assertEquals(1, r.getInteger("revoked"), r.encode());
            List<JsonObject> events = eventsUntilState(operator, "memory-disabled");
            events.add(operator.nextEvent(WAIT));
            events.add(operator.nextEvent(WAIT));
            assertEquals(List.of("export.revoking", "export.revoking", "device.state memory-disabled",
                    "export.revoked", "export.released"), types(events));

            JsonObject on = operator.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));
            assertEquals(0, on.getInteger("acked"), on.encode());
            events.addAll(eventsUntilState(operator, "ready"));
            checkInvariants(events);
            kept.fd().close();
            dropped.fd().close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("refusals: quiesce_ms above the maximum, quiesced without a watch or a handshake, watching another's export")
    void refusals(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> { });
             VfioExportClient owner = d.connect(); VfioExportClient stranger = d.connect()) {
            ExportedBuffer b = owner.export(NVME, 2, 0, 0x1000);
            long head = owner.request("device.get", new JsonObject().put("device", NVME)).getLong("seq");

            RpcError tooLong = assertThrows(RpcError.class, () -> owner.request("device.reset", reset(NVME, 30_001)));
            assertEquals(-32602, tooLong.code());
            assertEquals("quiesce_ms", tooLong.data().getString("field"));
            assertTrue(tooLong.getMessage().contains("30000"), tooLong.getMessage());
            RpcError tooLongMemory = assertThrows(RpcError.class, () -> owner.request("device.set_memory",
                    new JsonObject().put("device", NVME).put("enabled", false).put("quiesce_ms", 30_001)));
            assertEquals(-32602, tooLongMemory.code());
            assertEquals(head, owner.request("device.get", new JsonObject().put("device", NVME)).getLong("seq"),
                    "a refused call did nothing");

            RpcError notWatching = assertThrows(RpcError.class, () -> owner.request("export.quiesced", export(b.id())));
            assertEquals(-32008, notWatching.code());
            assertEquals("not-watching", notWatching.data().getString("reason"));
            assertEquals(b.id(), notWatching.data().getString("export_id"));
            owner.request("export.watch", export(b.id()));
            RpcError noHandshake = assertThrows(RpcError.class, () -> owner.request("export.quiesced", export(b.id())));
            assertEquals("no-handshake", noHandshake.data().getString("reason"));
            RpcError unknown = assertThrows(RpcError.class, () -> owner.request("export.quiesced", export(NVME + "/999")));
            assertEquals(-32002, unknown.code());
            RpcError foreign = assertThrows(RpcError.class, () -> stranger.request("export.watch", export(b.id())));
            assertEquals(-32002, foreign.code());
            // ack false ends the watch
            assertEquals(false, owner.request("export.watch", export(b.id()).put("ack", false)).getBoolean("watching"));
            assertEquals(0, owner.request("device.reset", reset(NVME, LONG)).getInteger("timed_out"),
                    "nobody watches any more: no handshake, no wait");
            b.fd().close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("max_watches_per_client bounds a connection's watches (-32005, data.limit); ending one makes room")
    void watchLimit(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> c.getJsonObject("handshake").put("max_watches_per_client", 2));
             VfioExportClient c = d.connect()) {
            List<ExportedBuffer> bs = new ArrayList<>();
            for (int i = 0; i < 3; i++) bs.add(c.export(NVME, 2, i * 0x1000L, 0x1000));
            c.request("export.watch", export(bs.get(0).id()));
            c.request("export.watch", export(bs.get(1).id()));
            c.request("export.watch", export(bs.get(1).id()));     // watching twice is one watch
            RpcError full = assertThrows(RpcError.class, () -> c.request("export.watch", export(bs.get(2).id())));
            assertEquals(-32005, full.code());
            assertEquals("max_watches_per_client", full.data().getString("limit"));
            assertEquals(2, full.data().getInteger("max"));
            c.request("export.release", export(bs.get(0).id()));   // a released export's watch ends with it
            c.request("export.watch", export(bs.get(2).id()));
            for (ExportedBuffer b : bs) b.fd().close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("7.1 semantics: the handshake first, then the kernel's revoke that waits for the importer to unmap")
    void composesWithTheKernelWait(String discipline) throws Exception {
        try (TestDaemon d = start(discipline, c -> c.getJsonObject("sim").put("semantics", "7.1"));
             VfioExportClient owner = d.connect(); VfioExportClient operator = d.connect()) {
            ExportedBuffer b = owner.export(NVME, 2, 0, 0x1000);
            String imp = owner.request("importer.attach", export(b.id()).put("unmap_on_invalidate", false))
                    .getString("importer_id");
            owner.request("importer.map", new JsonObject().put("importer_id", imp));
            owner.request("export.watch", export(b.id()));
            Object resetId = operator.send("device.reset", reset(NVME, LONG));

            owner.nextNotification("export.revoking", WAIT);
            // the importer is not invalidated before the handshake is over: the watcher stops its DMA first
            owner.request("export.quiesced", export(b.id()));
            JsonObject inv = owner.nextNotification("importer.invalidated", WAIT);
            assertEquals(1, inv.getInteger("mapped"), "this importer keeps its mapping until it unmaps itself");
            // the kernel's revoke now waits (no deadline) for the unmap: the device is still resetting
            // (asked on another connection: on the operator's, the answer would wait for the reset's, in request order)
            try (VfioExportClient other = d.connect()) {
                assertEquals("resetting", other.request("device.get", new JsonObject().put("device", NVME)).getString("state"));
            }
            owner.request("importer.unmap", new JsonObject().put("importer_id", imp));
            JsonObject r = operator.await(resetId).object().getJsonObject("result");
            assertEquals(1, r.getInteger("acked"), r.encode());
            owner.request("importer.detach", new JsonObject().put("importer_id", imp));
            b.fd().close();
        }
    }

    private static List<Message> awaitAll(VfioExportClient c, List<Object> ids) throws Exception {
        List<Message> out = new ArrayList<>();
        for (Object id : ids) out.add(c.await(id));
        return out;
    }

    /** 1 if the response is a reset or memory-off that consulted the watchers (all answered), 0 if it ran none. */
    private static int ranWithEveryAnswer(Message m, int watches) {
        JsonObject o = m.object();
        if (o.containsKey("error")) {
            assertEquals(-32004, o.getJsonObject("error").getInteger("code"), o.encode());
            return 0;
        }
        JsonObject r = o.getJsonObject("result");
        if (r.getInteger("revoked") == 0) return 0;        // memory-on, or a reset while memory was off
        assertEquals(watches, r.getInteger("acked"), r.encode());
        assertEquals(0, r.getInteger("timed_out"), r.encode());
        return 1;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("a reset storm with handshakes: every reset waits for every watcher's answer, the stream keeps every rule")
    void resetStorm(String discipline) throws Exception {
        int watchers = 6, exportsEach = 2, resets = 15;
        try (TestDaemon d = start(discipline, c -> { }); VfioExportClient operator = d.connect()) {
            subscribeFromTheStart(operator);
            List<VfioExportClient> owners = new ArrayList<>();
            List<ExportedBuffer> buffers = new ArrayList<>();
            for (int w = 0; w < watchers; w++) {
                VfioExportClient c = d.connect();
                owners.add(c);
                for (int i = 0; i < exportsEach; i++) {
                    ExportedBuffer b = c.export(NVME, 2, (w * exportsEach + i) * 0x1000L, 0x1000);
                    buffers.add(b);
                    c.request("export.watch", export(b.id()));
                }
            }
            // each owner on its own thread answers every notice it gets, as an application would, until told to stop
            AtomicReference<Throwable> failure = new AtomicReference<>();
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            List<Thread> threads = new ArrayList<>();
            for (VfioExportClient c : owners) {
                Thread t = new Thread(() -> {
                    try {
                        while (!stop.get()) {
                            JsonObject notice;
                            try {
                                notice = c.nextNotification("export.revoking", 100);
                            } catch (org.vfioexport.client.TimeoutIOException idle) {
                                continue;     // bounded: look at the stop flag again
                            }
                            c.request("export.quiesced", export(notice.getString("export_id")));
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }, "watcher");
                t.start();
                threads.add(t);
            }
            // two operators race resets and memory toggles at the device: try-reset refuses a reset while another
            // runs (its handshake included), so some answer busy; every one that ran waited for every watcher
            VfioExportClient second = d.connect();
            List<Object> first = new ArrayList<>(), other = new ArrayList<>();
            for (int i = 0; i < resets; i++) {
                first.add(operator.send("device.reset", reset(NVME, LONG)));
                other.add(second.send("device.reset", reset(NVME, LONG)));
                if (i % 5 == 4) {
                    other.add(second.send("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false)
                            .put("quiesce_ms", LONG)));
                    other.add(second.send("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true)));
                }
            }
            int ran = 0;
            for (Message m : awaitAll(operator, first)) ran += ranWithEveryAnswer(m, watchers * exportsEach);
            for (Message m : awaitAll(second, other)) ran += ranWithEveryAnswer(m, watchers * exportsEach);
            stop.set(true);
            for (Thread t : threads) {
                t.join(WAIT);
                assertTrue(!t.isAlive(), "a watcher thread did not stop");
            }
            assertNull(failure.get(), () -> "a watcher failed: " + failure.get());
            assertTrue(ran >= 1, "no reset ran");

            List<JsonObject> events = new ArrayList<>();
            long head = operator.request("device.get", new JsonObject().put("device", NVME)).getLong("seq");
            while (events.isEmpty() || events.getLast().getLong("seq") < head) events.add(operator.nextEvent(WAIT));
            checkInvariants(events);
            long revoking = events.stream().filter(e -> "export.revoking".equals(e.getString("type"))).count();
            assertEquals((long) ran * watchers * exportsEach, revoking, "one notice per watched export per handshake");
            for (JsonObject e : events) {
                if ("export.revoked".equals(e.getString("type"))) {
                    assertEquals(1, e.getInteger("acked"), e.encode());
                    assertEquals(0, e.getInteger("timed_out"), e.encode());
                }
            }
            second.close();
            for (VfioExportClient c : owners) c.close();
            for (ExportedBuffer b : buffers) b.fd().close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"message-order", "lock"})
    @DisplayName("a daemon stopping during a handshake cuts it short: the reset goes on and the devices close at once")
    void shutdownCutsTheHandshakeShort(String discipline) throws Exception {
        TestDaemon d = start(discipline, c -> { });
        try (VfioExportClient owner = d.connect(); VfioExportClient operator = d.connect()) {
            ExportedBuffer b = owner.export(NVME, 2, 0, 0x1000);
            owner.request("export.watch", export(b.id()));
            subscribeFromTheStart(operator);
            operator.send("device.reset", reset(NVME, LONG));
            owner.nextNotification("export.revoking", WAIT);
            long t0 = System.nanoTime();
            d.close();
            long stopMs = (System.nanoTime() - t0) / 1_000_000;
            // without the cut, the close waits behind the reset until its deadline: no device.state closed
            List<JsonObject> events = eventsUntilState(operator, "closed");
            checkInvariants(events);
            assertTrue(stopMs < 5_000, "stopping took " + stopMs + " ms");
            JsonObject revoked = events.stream().filter(e -> "export.revoked".equals(e.getString("type")))
                    .findFirst().orElseThrow();
            assertEquals(1, revoked.getInteger("timed_out"), revoked.encode());
            assertEquals("shutdown", events.getLast().getString("cause"));
            b.fd().close();
        }
    }
}

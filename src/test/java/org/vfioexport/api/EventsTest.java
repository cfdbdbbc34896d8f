package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** The event guarantees 1-6 of the protocol, as a subscriber on the socket sees them. */
class EventsTest {
    @TempDir
    Path dir;
    TestDaemon daemon;

    @BeforeEach
    void start() {
        daemon = TestDaemon.start(dir);
    }

    @AfterEach
    void stop() {
        if (daemon != null) daemon.close();
    }

    private void restart(Consumer<JsonObject> edit) {
        daemon.close();
        daemon = TestDaemon.start(dir, edit);
    }

    private static JsonObject device(String d) {
        return new JsonObject().put("device", d);
    }

    private static JsonObject subscribe(VfioExportClient c, JsonObject params) throws Exception {
        return c.request("events.subscribe", params);
    }

    /** Reads events until one of {@code device} with {@code seq} (bounded by the client's timeout). */
    private static List<JsonObject> eventsUpTo(VfioExportClient c, String device, long seq) throws Exception {
        List<JsonObject> out = new ArrayList<>();
        while (true) {
            JsonObject e = c.nextEvent(20_000);
            out.add(e);
            if (device.equals(e.getString("device")) && e.getLong("seq", 0L) == seq) return out;
            if ("events.lost".equals(e.getString("type")) && device.equals(e.getString("device")) && e.getLong("to_seq") == seq) {
                return out;
            }
        }
    }

    private static List<String> types(List<JsonObject> events) {
        List<String> t = new ArrayList<>();
        for (JsonObject e : events) t.add(e.getString("type") + (e.containsKey("state") ? ":" + e.getString("state") : ""));
        return t;
    }

    private static long seqOf(VfioExportClient c, String d) throws Exception {
        return c.request("device.get", device(d)).getLong("seq");
    }

    @Test
    void g1SeqIsPerDeviceFromOneWithoutGaps() throws Exception {
        try (VfioExportClient sub = daemon.connect(); VfioExportClient c = daemon.connect()) {
            JsonObject s = subscribe(sub, new JsonObject());
            assertEquals(new JsonObject().put(NVME, 0).put(GPU, 0), s.getJsonObject("heads"));
            assertTrue(s.getString("subscription").length() > 0);
            ExportedBuffer a = c.export(NVME, 2, 0, 4096);
            ExportedBuffer b = c.export(GPU, 2, 0, 4096);
            c.request("device.reset", device(NVME));
            c.request("device.set_memory", device(GPU).put("enabled", false));
            c.request("device.set_memory", device(GPU).put("enabled", true));
            c.request("export.release", new JsonObject().put("export_id", a.id()));
            long nvme = seqOf(c, NVME), gpu = seqOf(c, GPU);
            List<JsonObject> all = eventsUpTo(sub, NVME, nvme);
            if (all.stream().noneMatch(e -> GPU.equals(e.getString("device")) && e.getLong("seq") == gpu)) {
                all.addAll(eventsUpTo(sub, GPU, gpu));
            }
            long nextNvme = 1, nextGpu = 1;
            for (JsonObject e : all) {
                if (NVME.equals(e.getString("device"))) assertEquals(nextNvme++, e.getLong("seq"), e.encode());
                else assertEquals(nextGpu++, e.getLong("seq"), e.encode());
                assertTrue(e.getString("time").endsWith("Z"), "ISO-8601 UTC: " + e.getString("time"));
            }
            assertEquals(nvme + 1, nextNvme);
            assertEquals(gpu + 1, nextGpu);
            a.fd().close();
            b.fd().close();
        }
    }

    @Test
    void g2OneExportLivesCreatedRevokedRestoredReleased() throws Exception {
        try (VfioExportClient sub = daemon.connect(); VfioExportClient c = daemon.connect()) {
            subscribe(sub, new JsonObject().put("devices", new JsonArray().add(NVME)));
            ExportedBuffer a = c.export(NVME, 0, 0, 4096);
            c.request("device.set_memory", device(NVME).put("enabled", false));
            c.request("device.set_memory", device(NVME).put("enabled", true));
            c.request("device.reset", device(NVME));
            c.request("export.release", new JsonObject().put("export_id", a.id()));
            List<JsonObject> mine = new ArrayList<>();
            for (JsonObject e : eventsUpTo(sub, NVME, seqOf(c, NVME))) if (a.id().equals(e.getString("export_id"))) mine.add(e);
            assertEquals(List.of("export.created:live", "export.revoked", "export.restored", "export.revoked",
                    "export.restored", "export.released"), types(mine));
            assertEquals(List.of("client", "memory-disable", "memory-enable", "reset", "reset", "client"),
                    mine.stream().map(e -> e.getString("cause")).toList());
            a.fd().close();
        }
    }

    @Test
    void g3ResetSequenceAndExportsCreatedWhileMemoryIsOff() throws Exception {
        try (VfioExportClient sub = daemon.connect(); VfioExportClient c = daemon.connect()) {
            subscribe(sub, new JsonObject().put("devices", new JsonArray().add(NVME)));
            ExportedBuffer a = c.export(NVME, 0, 0, 4096), b = c.export(NVME, 2, 0, 8192);
            long before = seqOf(c, NVME);
            eventsUpTo(sub, NVME, before);
            c.request("device.reset", device(NVME));
            assertEquals(List.of("device.state:resetting", "export.revoked", "export.revoked", "export.restored",
                    "export.restored", "device.state:ready"), types(eventsUpTo(sub, NVME, seqOf(c, NVME))));

            c.request("device.set_memory", device(NVME).put("enabled", false));
            assertEquals(List.of("device.state:memory-disabled", "export.revoked", "export.revoked"),
                    types(eventsUpTo(sub, NVME, seqOf(c, NVME))));
            ExportedBuffer late = c.export(NVME, 2, 8192, 4096);
            assertEquals("revoked", late.export().getString("state"));
            assertEquals(List.of("export.created:revoked"), types(eventsUpTo(sub, NVME, seqOf(c, NVME))));
            c.request("device.reset", device(NVME));
            List<String> reset = types(eventsUpTo(sub, NVME, seqOf(c, NVME)));
            assertEquals("device.state:resetting", reset.get(0));
            assertEquals("device.state:memory-disabled", reset.get(reset.size() - 1), "no export is live after: " + reset);
            assertFalse(reset.contains("export.restored"), reset.toString());
            c.request("device.set_memory", device(NVME).put("enabled", true));
            assertEquals(List.of("export.restored", "export.restored", "export.restored", "device.state:ready"),
                    types(eventsUpTo(sub, NVME, seqOf(c, NVME))));
            for (Fd fd : new Fd[] {a.fd(), b.fd(), late.fd()}) fd.close();
        }
    }

    @Test
    void g4TheCallerSeesTheEventsBeforeTheResponse() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            subscribe(c, new JsonObject().put("devices", new JsonArray().add(NVME)));
            List<ExportedBuffer> held = new ArrayList<>();
            for (int i = 0; i < 3; i++) held.add(c.export(NVME, 2, 4096L * i, 4096));
            eventsUpTo(c, NVME, seqOf(c, NVME));
            for (int round = 0; round < 50; round++) {
                for (JsonObject req : List.of(
                        new JsonObject().put("m", "device.reset").put("p", device(NVME)),
                        new JsonObject().put("m", "device.set_memory").put("p", device(NVME).put("enabled", false)),
                        new JsonObject().put("m", "device.set_memory").put("p", device(NVME).put("enabled", true)))) {
                    Object id = c.send(req.getString("m"), req.getJsonObject("p"));
                    List<String> before = new ArrayList<>();
                    while (true) {
                        Message m = c.read(20_000);
                        if (m.isNotification()) {
                            before.add(m.object().getJsonObject("params").getString("type"));
                            continue;
                        }
                        assertEquals(id, m.object().getLong("id"));
                        break;
                    }
                    int expected = switch (req.getString("m")) {
                        case "device.reset" -> 2 + 3 + 3;
                        default -> 1 + 3;
                    };
                    assertEquals(expected, before.size(), round + " " + req.getString("m") + ": events before the response: " + before);
                }
            }
            for (ExportedBuffer b : held) b.fd().close();
        }
    }

    @Test
    void g4HoldsForACallerThatReadsLate() throws Exception {
        restart(c -> c.getJsonObject("policy").put("subscriber_queue", 100_000));
        try (VfioExportClient caller = daemon.connect(); VfioExportClient flood = daemon.connect()) {
            subscribe(caller, new JsonObject());
            List<ExportedBuffer> held = new ArrayList<>();
            for (int i = 0; i < 3; i++) held.add(caller.export(NVME, 2, 4096L * i, 4096));
            for (int i = 0; i < 2; i++) held.add(flood.export(GPU, 2, 4096L * i, 4096));
            // while the caller reads nothing, GPU events fill its socket and pause its subscription
            // pipelined in windows of 100: a client that writes 1500 requests before reading any answer can fill
            // both directions of its socket (the daemon stops reading a client whose answers pile up), and a
            // blocking send would then never return
            for (int w = 0; w < 15; w++) {
                List<Object> ids = new ArrayList<>();
                for (int i = 0; i < 100; i++) ids.add(flood.send("device.set_memory", device(GPU).put("enabled", i % 2 == 1)));
                for (Object id : ids) assertTrue(flood.await(id).object().containsKey("result"));
            }
            Object reset = caller.send("device.reset", device(NVME));
            List<String> nvmeBefore = new ArrayList<>();
            while (true) {
                Message m = caller.read(30_000);
                if (m.isNotification()) {
                    JsonObject e = m.object().getJsonObject("params");
                    if (NVME.equals(e.getString("device")) && "reset".equals(e.getString("cause"))) nvmeBefore.add(e.getString("type"));
                    continue;
                }
                if (!reset.equals(m.object().getLong("id"))) continue; // the exports' responses, read late
                break;
            }
            assertEquals(8, nvmeBefore.size(), "every event of the reset before its response: " + nvmeBefore);
            for (ExportedBuffer b : held) b.fd().close();
        }
    }

    @Test
    void g5SessionEndReleasesTheOwnersExports() throws Exception {
        try (VfioExportClient sub = daemon.connect()) {
            subscribe(sub, new JsonObject());
            String id;
            Fd fd;
            try (VfioExportClient owner = daemon.connect()) {
                ExportedBuffer a = owner.export(GPU, 2, 0, 4096);
                id = a.id();
                fd = a.fd();
            }
            JsonObject released;
            do {
                released = sub.nextEvent(20_000);
            } while (!"export.released".equals(released.getString("type")));
            assertEquals(id, released.getString("export_id"));
            assertEquals("session-end", released.getString("cause"));
            fd.close();
        }
    }

    @Test
    void g5AReleaseUnderWayWhenAResetStartsIsNotRevoked() throws Exception {
        try (VfioExportClient sub = daemon.connect(); VfioExportClient c = daemon.connect()) {
            subscribe(sub, new JsonObject().put("devices", new JsonArray().add(NVME)));
            ExportedBuffer gone = c.export(NVME, 2, 0, 4096), kept = c.export(NVME, 2, 4096, 4096);
            // pipelined: the release begins when its line is read, before the reset is even asked for
            Object release = c.send("export.release", new JsonObject().put("export_id", gone.id()));
            Object reset = c.send("device.reset", device(NVME));
            assertTrue(c.await(release).object().containsKey("result"));
            assertEquals(1, c.await(reset).object().getJsonObject("result").getInteger("revoked"));
            List<JsonObject> all = eventsUpTo(sub, NVME, seqOf(c, NVME));
            List<String> ofGone = new ArrayList<>(), ofKept = new ArrayList<>();
            for (JsonObject e : all) {
                if (gone.id().equals(e.getString("export_id"))) ofGone.add(e.getString("type"));
                if (kept.id().equals(e.getString("export_id"))) ofKept.add(e.getString("type"));
            }
            assertEquals(List.of("export.created", "export.released"), ofGone);
            assertEquals(List.of("export.created", "export.revoked", "export.restored"), ofKept);
            gone.fd().close();
            kept.fd().close();
        }
    }

    @Test
    void g6SinceReplaysRetainedEventsThenGoesLive() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            for (int i = 0; i < 3; i++) c.request("device.reset", device(NVME));
            long head = seqOf(c, NVME); // 6
            try (VfioExportClient sub = daemon.connect()) {
                JsonObject s = subscribe(sub, new JsonObject().put("devices", new JsonArray().add(NVME))
                        .put("since", new JsonObject().put(NVME, 2)));
                assertEquals(head, s.getJsonObject("heads").getLong(NVME));
                c.request("device.reset", device(NVME));
                List<JsonObject> got = eventsUpTo(sub, NVME, head + 2);
                assertEquals(head, got.size());
                for (int i = 0; i < got.size(); i++) assertEquals(3 + i, got.get(i).getLong("seq"));
            }
        }
    }

    @Test
    void g6OlderThanRetentionComesAsEventsLost() throws Exception {
        restart(c -> c.put("event_retention", 8));
        try (VfioExportClient c = daemon.connect()) {
            for (int i = 0; i < 10; i++) c.request("device.reset", device(NVME)); // 20 events
            try (VfioExportClient sub = daemon.connect()) {
                subscribe(sub, new JsonObject().put("since", new JsonObject().put(NVME, 0)));
                JsonObject lost = sub.nextEvent(20_000);
                assertEquals("events.lost", lost.getString("type"));
                assertEquals(NVME, lost.getString("device"));
                assertEquals(1, lost.getLong("from_seq"));
                assertEquals(12, lost.getLong("to_seq"));
                List<JsonObject> rest = eventsUpTo(sub, NVME, 20);
                assertEquals(8, rest.size());
                assertEquals(13, rest.get(0).getLong("seq"));
            }
        }
    }

    @Test
    void slowSubscriberGetsEventsLostNamingTheExactGap() throws Exception {
        restart(c -> c.getJsonObject("policy").put("subscriber_queue", 4));
        try (VfioExportClient sub = daemon.connect(); VfioExportClient c = daemon.connect()) {
            subscribe(sub, new JsonObject().put("devices", new JsonArray().add(NVME)));
            // the subscriber reads nothing while thousands of events are produced (each toggle revokes or restores
            // eight exports): its socket fills, its delivery pauses, then its queue overflows
            List<ExportedBuffer> held = new ArrayList<>();
            for (int i = 0; i < 8; i++) held.add(c.export(NVME, 2, 4096L * i, 4096));
            List<Object> ids = new ArrayList<>();
            for (int i = 0; i < 600; i++) ids.add(c.send("device.set_memory", device(NVME).put("enabled", i % 2 == 1)));
            for (Object id : ids) assertTrue(c.await(id).object().containsKey("result"));
            for (ExportedBuffer b : held) b.fd().close();
            long head = seqOf(c, NVME);
            long next = 1;
            boolean sawLoss = false;
            while (next <= head) {
                JsonObject e = sub.nextEvent(20_000);
                if ("events.lost".equals(e.getString("type"))) {
                    assertEquals(next, e.getLong("from_seq"), "a gap starts where delivery stopped");
                    next = e.getLong("to_seq") + 1;
                    sawLoss = true;
                } else {
                    assertEquals(next, e.getLong("seq"), e.encode());
                    next++;
                }
            }
            assertEquals(head + 1, next);
            assertTrue(sawLoss, "a subscriber that does not read loses events, and is told so");
        }
    }

    @Test
    void unsubscribeStopsDelivery() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            String id = subscribe(c, new JsonObject()).getString("subscription");
            assertEquals(new JsonObject().put("subscription", id).put("unsubscribed", true),
                    c.request("events.unsubscribe", new JsonObject().put("subscription", id)));
            Object rid = c.send("device.reset", device(NVME));
            Message m = c.read(20_000);
            assertFalse(m.isNotification(), "no event before the response: " + m.json());
            assertEquals(rid, m.object().getLong("id"));
            assertEquals(Set.of(), Set.copyOf(c.request("export.list").getJsonArray("exports").getList()));
        }
    }
}

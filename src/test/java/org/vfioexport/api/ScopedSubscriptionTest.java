package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.events.Cause;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.events.EventType;
import org.vfioexport.events.Scope;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * Scoped subscriptions over the socket: {@code events.subscribe} with {@code scope} "own" and "exports" sees
 * exactly the events of its exports and every device event, in seq order; "all" is the stream of before; bad
 * scopes are refused with stable codes. Each scoped stream is compared with the view computed from an unscoped
 * subscriber's full stream of the same daemon, so a missing or extra event anywhere fails.
 */
class ScopedSubscriptionTest {
    @TempDir
    Path dir;
    TestDaemon daemon;
    final List<ExportedBuffer> buffers = new ArrayList<>();

    @BeforeEach
    void start() {
        daemon = TestDaemon.start(dir);
    }

    @AfterEach
    void stop() throws Exception {
        for (ExportedBuffer b : buffers) b.fd().close();
        if (daemon != null) daemon.close();
    }

    private static JsonObject device(String d) {
        return new JsonObject().put("device", d);
    }

    private ExportedBuffer export(VfioExportClient c, String d) throws Exception {
        ExportedBuffer b = c.export(d, d.equals(NVME) ? 0 : 2, 0, 4096);
        buffers.add(b);
        return b;
    }

    private static long head(VfioExportClient c, String d) throws Exception {
        return c.request("device.get", device(d)).getLong("seq");
    }

    private static JsonObject own() {
        return new JsonObject().put("scope", "own");
    }

    private static JsonObject list(String... ids) {
        return new JsonObject().put("scope", "exports").put("export_ids", new JsonArray(List.of((Object[]) ids)));
    }

    /**
     * Reads {@code c}'s events until it has one of each device in {@code heads} at that device's head; the heads
     * must be device events (in every scope). Events of one device come in order, devices interleave.
     */
    private static List<Event> readUntil(VfioExportClient c, Map<String, Long> heads) throws Exception {
        List<Event> out = new ArrayList<>();
        Set<String> done = new HashSet<>();
        while (done.size() < heads.size()) {
            Event e = event(c.nextEvent(20_000));
            out.add(e);
            Long h = heads.get(e.device());
            if (h != null && e.seq() >= h) {
                assertEquals(h, e.seq(), "an event after the head " + h + ": " + e);
                assertEquals(EventType.DEVICE_STATE, e.type(), "the heads read must be device events: " + e);
                done.add(e.device());
            }
        }
        return out;
    }

    /** An EVENT object as an {@link Event} (owner unknown on the wire, time irrelevant here). */
    private static Event event(JsonObject o) {
        EventType type = null;
        for (EventType t : EventType.values()) if (t.wire.equals(o.getString("type"))) type = t;
        Cause cause = null;
        for (Cause k : Cause.values()) if (k.wire.equals(o.getString("cause"))) cause = k;
        return new Event(o.getLong("seq", 0L), o.getString("device"), type, o.getString("export_id"), cause,
                Instant.EPOCH, o.getString("state"), o.getLong("from_seq", 0L), o.getLong("to_seq", 0L));
    }

    /** The events of one device, as "seq type export" strings: what two views are compared by. */
    private static List<String> lines(List<Event> events, String d) {
        List<String> out = new ArrayList<>();
        for (Event e : events) {
            if (!e.device().equals(d)) continue;
            out.add(e.seq() + " " + e.type().wire + (e.exportId() == null ? "" : " " + e.exportId())
                    + (e.state() == null ? "" : " " + e.state()));
        }
        return out;
    }

    /** {@code seen} is the view of {@code full} for {@code exports}, from the seqs after {@code heads} on. */
    private static void assertView(List<Event> full, Set<String> exports, Map<String, Long> heads, List<Event> seen, String who) {
        List<Event> expected = new ArrayList<>();
        for (Event e : EventInvariants.view(full, Scope.exports(exports))) {
            if (e.seq() > heads.getOrDefault(e.device(), 0L)) expected.add(e);
        }
        for (String d : List.of(NVME, GPU)) assertEquals(lines(expected, d), lines(seen, d), who + " on " + d);
        EventInvariants inv = EventInvariants.scoped();
        for (Event e : seen) inv.accept(e);
        assertEquals(List.of(), inv.violations(), who);
    }

    /** Resets NVME and toggles GPU's memory: each ends with a device event, the heads a scoped reader waits for. */
    private static Map<String, Long> endWithDeviceEvents(VfioExportClient c) throws Exception {
        c.request("device.reset", device(NVME));
        c.request("device.set_memory", device(GPU).put("enabled", false));
        c.request("device.set_memory", device(GPU).put("enabled", true));
        Map<String, Long> heads = new LinkedHashMap<>();
        heads.put(NVME, head(c, NVME));
        heads.put(GPU, head(c, GPU));
        return heads;
    }

    @Test
    void ownScopeSeesItsConnectionsExportsAndEveryDeviceEvent() throws Exception {
        try (VfioExportClient all = daemon.connect(); VfioExportClient a = daemon.connect();
             VfioExportClient b = daemon.connect()) {
            all.request("events.subscribe", new JsonObject());
            ExportedBuffer before = export(a, NVME);   // before a subscribes: still a's own
            JsonObject sub = a.request("events.subscribe", own().put("since", new JsonObject().put(NVME, 0).put(GPU, 0)));
            assertEquals(new JsonObject().put(NVME, 1).put(GPU, 0), sub.getJsonObject("heads"));
            ExportedBuffer a1 = export(a, NVME), a2 = export(a, GPU);
            ExportedBuffer b1 = export(b, NVME), b2 = export(b, GPU);
            b.request("device.reset", device(NVME));
            a.request("export.release", new JsonObject().put("export_id", a1.id()));
            b.request("export.release", new JsonObject().put("export_id", b1.id()));
            Map<String, Long> heads = endWithDeviceEvents(b);

            List<Event> full = readUntil(all, heads);
            List<Event> mine = readUntil(a, heads);
            assertView(full, Set.of(before.id(), a1.id(), a2.id()), Map.of(), mine, "own scope");
            assertTrue(mine.stream().noneMatch(e -> b1.id().equals(e.exportId()) || b2.id().equals(e.exportId())),
                    "another connection's exports are out of scope: " + mine);
            // the reset on NVME as the own subscriber saw it: its two exports, framed by the device's states
            List<String> reset = new ArrayList<>();
            for (Event e : mine) {
                if (e.device().equals(NVME) && e.cause() == Cause.RESET) {
                    reset.add(e.type().wire + (e.exportId() == null ? ":" + e.state() : ":" + e.exportId()));
                }
            }
            assertEquals(List.of("device.state:resetting", "export.revoked:" + before.id(), "export.revoked:" + a1.id(),
                    "export.restored:" + before.id(), "export.restored:" + a1.id(), "device.state:ready",
                    // the second reset, after a1's release
                    "device.state:resetting", "export.revoked:" + before.id(), "export.restored:" + before.id(),
                    "device.state:ready"), reset);
        }
    }

    @Test
    void listScopeSeesTheNamedExportsWhoeverOwnsThem() throws Exception {
        try (VfioExportClient all = daemon.connect(); VfioExportClient a = daemon.connect();
             VfioExportClient b = daemon.connect(); VfioExportClient l = daemon.connect()) {
            all.request("events.subscribe", new JsonObject());
            ExportedBuffer a1 = export(a, NVME), a2 = export(a, NVME), b1 = export(b, GPU), b2 = export(b, NVME);
            JsonObject sub = l.request("events.subscribe", list(a1.id(), b1.id(), a1.id()));   // a repeat is one
            Map<String, Long> at = Map.of(NVME, sub.getJsonObject("heads").getLong(NVME), GPU, sub.getJsonObject("heads").getLong(GPU));
            assertEquals(Map.of(NVME, 3L, GPU, 1L), at);
            b.request("device.reset", device(NVME));
            a.request("export.release", new JsonObject().put("export_id", a1.id()));
            ExportedBuffer a3 = export(a, NVME);       // created after: not in the list
            Map<String, Long> heads = endWithDeviceEvents(b);

            List<Event> full = readUntil(all, heads);
            List<Event> seen = readUntil(l, heads);
            assertView(full, Set.of(a1.id(), b1.id()), at, seen, "list scope");
            Set<String> ids = new HashSet<>();
            for (Event e : seen) if (e.exportId() != null) ids.add(e.exportId());
            assertEquals(Set.of(a1.id(), b1.id()), ids, "only the listed exports: not " + Set.of(a2.id(), b2.id(), a3.id()));
            assertTrue(seen.stream().anyMatch(e -> e.type() == EventType.EXPORT_RELEASED && a1.id().equals(e.exportId())),
                    "the listed export's release: " + seen);
        }
    }

    @Test
    void emptyListScopeIsTheDeviceEventsOnly() throws Exception {
        try (VfioExportClient all = daemon.connect(); VfioExportClient a = daemon.connect(); VfioExportClient l = daemon.connect()) {
            all.request("events.subscribe", new JsonObject());
            l.request("events.subscribe", list());
            export(a, NVME);
            export(a, GPU);
            Map<String, Long> heads = endWithDeviceEvents(a);
            List<Event> seen = readUntil(l, heads);
            assertView(readUntil(all, heads), Set.of(), Map.of(), seen, "empty list");
            assertTrue(seen.stream().allMatch(e -> e.type() == EventType.DEVICE_STATE), seen.toString());
        }
    }

    @Test
    void allScopeIsTheUnscopedStream() throws Exception {
        try (VfioExportClient dflt = daemon.connect(); VfioExportClient all = daemon.connect(); VfioExportClient a = daemon.connect()) {
            dflt.request("events.subscribe", new JsonObject());
            all.request("events.subscribe", new JsonObject().put("scope", "all"));
            ExportedBuffer x = export(a, NVME);
            export(a, GPU);
            a.request("export.release", new JsonObject().put("export_id", x.id()));
            Map<String, Long> heads = endWithDeviceEvents(a);
            List<Event> d = readUntil(dflt, heads), s = readUntil(all, heads);
            for (String dev : List.of(NVME, GPU)) assertEquals(lines(d, dev), lines(s, dev));
            EventInvariants inv = new EventInvariants();   // the gap-free checker: every seq from 1
            for (Event e : s) inv.accept(e);
            assertEquals(List.of(), inv.violations());
            assertEquals(heads.get(NVME), inv.lastSeq(NVME));
        }
    }

    @Test
    void resetWithSeveralScopedSubscribersGivesEachExactlyItsRevocationsAndRestoresInOrder() throws Exception {
        int clients = 4, per = 6;
        List<VfioExportClient> cs = new ArrayList<>();
        try (VfioExportClient ctl = daemon.connect()) {
            List<List<String>> owned = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                VfioExportClient c = daemon.connect();
                cs.add(c);
                c.request("events.subscribe", own().put("devices", new JsonArray().add(NVME)));
                owned.add(new ArrayList<>());
            }
            for (int k = 0; k < per; k++) {          // interleaved, so each one's exports are spread over the seqs
                for (int i = 0; i < clients; i++) owned.get(i).add(export(cs.get(i), NVME).id());
            }
            long before = head(ctl, NVME);
            JsonObject r = ctl.request("device.reset", device(NVME));
            assertEquals(clients * per, r.getInteger("revoked"));
            long after = head(ctl, NVME);
            for (int i = 0; i < clients; i++) {
                List<Event> got = readUntil(cs.get(i), Map.of(NVME, after));
                List<Event> reset = got.stream().filter(e -> e.seq() > before).toList();
                List<String> expected = new ArrayList<>();
                expected.add("device.state resetting");
                for (String id : owned.get(i)) expected.add("export.revoked " + id);
                for (String id : owned.get(i)) expected.add("export.restored " + id);
                expected.add("device.state ready");
                List<String> types = reset.stream().map(e -> e.type().wire + " " + (e.exportId() == null ? e.state() : e.exportId())).toList();
                assertEquals(expected, types, "subscriber " + i);
                assertEquals(before + 1, reset.getFirst().seq(), "resetting is the reset's first event");
                assertEquals(after, reset.getLast().seq(), "ready is its last");
                EventInvariants inv = EventInvariants.scoped();
                for (Event e : got) inv.accept(e);
                assertEquals(List.of(), inv.violations(), "subscriber " + i);
            }
        } finally {
            for (VfioExportClient c : cs) c.close();
        }
    }

    @Test
    void ownScopeReplaysOnlyOwnEvents() throws Exception {
        try (VfioExportClient a = daemon.connect(); VfioExportClient b = daemon.connect()) {
            ExportedBuffer a1 = export(a, NVME);
            export(b, NVME);
            ExportedBuffer a2 = export(a, NVME);
            b.request("device.reset", device(NVME));
            a.request("events.subscribe", own().put("devices", new JsonArray().add(NVME)).put("since", new JsonObject().put(NVME, 0)));
            List<Event> got = readUntil(a, Map.of(NVME, head(b, NVME)));
            assertEquals(List.of("1 export.created " + a1.id() + " live", "3 export.created " + a2.id() + " live",
                    "4 device.state resetting", "5 export.revoked " + a1.id(), "7 export.revoked " + a2.id(),
                    "8 export.restored " + a1.id(), "10 export.restored " + a2.id(), "11 device.state ready"), lines(got, NVME));
        }
    }

    // ---- refusals --------------------------------------------------------------------------------------------

    private static RpcError refused(VfioExportClient c, JsonObject params) {
        return assertThrows(RpcError.class, () -> c.request("events.subscribe", params));
    }

    private static void assertInvalid(VfioExportClient c, JsonObject params, String field, String messagePart) {
        RpcError e = refused(c, params);
        assertEquals(-32602, e.code(), e.getMessage());
        assertEquals(field, e.data().getString("field"), e.getMessage());
        assertTrue(e.getMessage().contains(messagePart), e.getMessage());
    }

    @Test
    void invalidScopesAreInvalidParams() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            assertInvalid(c, new JsonObject().put("scope", "mine"), "scope", "must be \"all\", \"own\" or \"exports\"");
            assertInvalid(c, new JsonObject().put("scope", 1), "scope", "string");
            assertInvalid(c, new JsonObject().put("scope", "own").put("export_ids", new JsonArray()), "export_ids", "scope \"exports\" only");
            assertInvalid(c, new JsonObject().put("export_ids", new JsonArray()), "export_ids", "scope \"exports\" only");
            assertInvalid(c, new JsonObject().put("scope", "exports"), "export_ids", "missing field 'export_ids'");
            assertInvalid(c, new JsonObject().put("scope", "exports").put("export_ids", "a"), "export_ids", "array");
            assertInvalid(c, new JsonObject().put("scope", "exports").put("export_ids", new JsonArray().add("a").add(5)),
                    "export_ids[1]", "string");
            assertEquals(0, c.request("server.info").getInteger("subscribers"), "nothing was subscribed");
        }
    }

    @Test
    void unknownExportsInAListAreRefusedAndNothingIsSubscribed() throws Exception {
        try (VfioExportClient c = daemon.connect(); VfioExportClient o = daemon.connect()) {
            ExportedBuffer n = export(o, NVME), g = export(o, GPU);
            RpcError e = refused(c, list(n.id(), "0000:01:00.0/999", "nope"));
            assertEquals(-32002, e.code(), e.getMessage());
            assertEquals("0000:01:00.0/999", e.data().getString("export_id"));
            assertEquals(new JsonArray().add("0000:01:00.0/999").add("nope"), e.data().getJsonArray("export_ids"));
            // an export of a device the subscription does not follow is unknown to it
            e = refused(c, list(n.id(), g.id()).put("devices", new JsonArray().add(NVME)));
            assertEquals(-32002, e.code());
            assertEquals(g.id(), e.data().getString("export_id"));
            // a released export is gone, unless the replay asked for holds its events
            o.request("export.release", new JsonObject().put("export_id", n.id()));
            assertEquals(-32002, refused(c, list(n.id())).code());
            assertEquals(0, c.request("server.info").getInteger("subscribers"), "no refused subscription stayed");
            c.request("events.subscribe", list(n.id()).put("devices", new JsonArray().add(NVME)).put("since", new JsonObject().put(NVME, 0)));
            List<Event> got = new ArrayList<>();
            got.add(event(c.nextEvent(20_000)));
            got.add(event(c.nextEvent(20_000)));
            assertEquals(List.of("1 export.created " + n.id() + " live", "2 export.released " + n.id()), lines(got, NVME));
        }
    }

    @Test
    void aRefusedSubscriptionGivesItsSlotBack() throws Exception {
        daemon.close();
        daemon = TestDaemon.start(dir, conf -> conf.put("policy", conf.getJsonObject("policy", new JsonObject())
                .put("max_subscriptions_per_uid", 1)));
        try (VfioExportClient c = daemon.connect()) {
            for (int i = 0; i < 3; i++) assertEquals(-32002, refused(c, list("nope")).code());
            c.request("events.subscribe", own());   // the one slot is free
            assertEquals(-32005, refused(c, own()).code());
        }
    }

    @Test
    void aListLongerThanTheBoundIsRefusedWithItsLimit() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonArray ids = new JsonArray();
            for (int i = 0; i < SubscribeScope.MAX_EXPORT_IDS; i++) ids.add(NVME + "/" + (100_000 + i));
            // at the bound the list is taken (and its ids checked: none exists)
            RpcError e = refused(c, new JsonObject().put("scope", "exports").put("export_ids", ids));
            assertEquals(-32002, e.code(), e.getMessage());
            ids.add(NVME + "/1");
            e = refused(c, new JsonObject().put("scope", "exports").put("export_ids", ids));
            assertEquals(-32602, e.code(), e.getMessage());
            assertEquals(new JsonObject().put("field", "export_ids").put("limit", "max_scope_exports").put("max", 1024), e.data());
            assertTrue(e.getMessage().contains("1025") && e.getMessage().contains("1024"), e.getMessage());
        }
    }
}

package org.vfioexport.audit;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.testutil.TestDaemon;
import org.vfioexport.testutil.Wait;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** The audit journal of an in-process daemon: its records, its files and rotation, and audit.query. */
class AuditJournalTest {
    @TempDir
    Path dir;

    private Path journal() {
        return dir.resolve("vfio-export.audit.jsonl");
    }

    /** Every record of the journal's files, oldest first, as written. */
    static List<JsonObject> records(Path journal, int keep) throws IOException {
        List<JsonObject> out = new ArrayList<>();
        for (int i = keep; i >= 0; i--) {
            Path p = i == 0 ? journal : journal.resolveSibling(journal.getFileName() + "." + i);
            if (!Files.exists(p)) continue;
            for (String l : Files.readAllLines(p)) out.add(new JsonObject(l));
        }
        return out;
    }

    private static JsonObject query(VfioExportClient c, JsonObject params) throws Exception {
        return c.request("audit.query", params);
    }

    private static List<JsonObject> queried(VfioExportClient c, JsonObject params) throws Exception {
        List<JsonObject> out = new ArrayList<>();
        for (Object o : query(c, params).getJsonArray("records")) out.add((JsonObject) o);
        return out;
    }

    private static List<String> events(List<JsonObject> records) {
        return records.stream().map(r -> r.getString("event")).toList();
    }

    private static void assertWho(JsonObject r) throws Exception {
        assertEquals(ProcessHandle.current().pid(), r.getLong("pid"), r.encode());
        assertEquals((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid"), r.getInteger("uid"), r.encode());
        assertEquals((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:gid"), r.getInteger("gid"), r.encode());
        assertEquals(Posix.readlink("/proc/self/exe"), r.getString("exe"), r.encode());
    }

    @Test
    void recordsSayWhoDidWhatAndHowItEnded() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir); VfioExportClient c = d.connect()) {
            ExportedBuffer a = c.export(new JsonObject().put("device", NVME).put("region", 2).put("ranges", new JsonArray()
                    .add(new JsonObject().put("offset", 0).put("length", 4096))
                    .add(new JsonObject().put("offset", 8192).put("length", 4096))));
            RpcError bad = assertThrows(RpcError.class, () -> c.export(GPU, 5, 0, 4096));
            c.request("device.reset", new JsonObject().put("device", NVME));
            c.request("device.set_memory", new JsonObject().put("device", GPU).put("enabled", false));
            c.request("export.release", new JsonObject().put("export_id", a.id()));
            RpcError again = assertThrows(RpcError.class, () -> c.request("export.release", new JsonObject().put("export_id", a.id())));
            a.fd().close();

            List<JsonObject> all = queried(c, new JsonObject());
            assertEquals(List.of("daemon.start", "export.create", "export.create", "device.reset", "device.set_memory",
                    "export.release", "export.release"), events(all));
            JsonObject start = all.get(0);
            assertEquals(ProcessHandle.current().pid(), start.getLong("pid"), "the daemon runs in this JVM");
            assertEquals("sim", start.getString("backend"));
            assertEquals(d.socket().toAbsolutePath().toString(), start.getString("socket"));
            for (JsonObject r : all.subList(1, all.size())) assertWho(r);

            JsonObject created = all.get(1);
            assertEquals(NVME, created.getString("device"));
            assertEquals(a.id(), created.getString("export_id"));
            assertEquals(2, created.getInteger("region"));
            assertEquals(new JsonArray().add(new JsonObject().put("offset", 0).put("length", 4096))
                    .add(new JsonObject().put("offset", 8192).put("length", 4096)), created.getJsonArray("ranges"));
            assertEquals(8192, created.getLong("size"));
            assertEquals(true, created.getBoolean("ok"));
            assertFalse(created.containsKey("error"));

            JsonObject refused = all.get(2);
            assertEquals(false, refused.getBoolean("ok"));
            assertEquals(GPU, refused.getString("device"));
            assertEquals(5, refused.getInteger("region"));
            assertEquals(bad.code(), refused.getJsonObject("error").getInteger("code"));
            assertEquals(bad.getMessage(), refused.getJsonObject("error").getString("message"));
            assertNull(refused.getValue("export_id"));

            JsonObject reset = all.get(3);
            assertEquals(NVME, reset.getString("device"));
            assertEquals(true, reset.getBoolean("ok"));
            assertEquals(1, reset.getInteger("revoked"), "the live export was revoked, then restored");
            assertEquals(1, reset.getInteger("restored"));

            JsonObject memory = all.get(4);
            assertEquals(GPU, memory.getString("device"));
            assertEquals(false, memory.getBoolean("enabled"));
            assertEquals(true, memory.getBoolean("ok"));

            JsonObject released = all.get(5);
            assertEquals(a.id(), released.getString("export_id"));
            assertEquals(NVME, released.getString("device"));
            assertEquals("client", released.getString("cause"));
            assertEquals(true, released.getBoolean("ok"));
            JsonObject twice = all.get(6);
            assertEquals(false, twice.getBoolean("ok"));
            assertEquals(again.code(), twice.getJsonObject("error").getInteger("code"));

            // the file holds the same records, seq rising by one, ts in UTC with milliseconds
            List<JsonObject> file = records(journal(), 4);
            assertEquals(all, file);
            for (int i = 0; i < file.size(); i++) {
                assertEquals(i + 1, file.get(i).getLong("seq"));
                assertTrue(file.get(i).getString("ts").matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z"),
                        file.get(i).getString("ts"));
            }
        }
        List<JsonObject> after = records(journal(), 4);
        assertEquals("daemon.stop", after.get(after.size() - 1).getString("event"));
    }

    @Test
    void releasesTheClientDidNotAskForAreRecordedWithTheirCause() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir); VfioExportClient probe = d.connect()) {
            String id;
            try (VfioExportClient c = d.connect()) {
                ExportedBuffer b = c.export(NVME, 2, 0, 4096);
                id = b.id();
                b.fd().close();
            } // the connection ends: its export goes with it
            Wait.until("the session-end release in the journal", 10_000, () -> !call(() -> queried(probe,
                    new JsonObject().put("event", "export.release"))).isEmpty());
            JsonObject r = queried(probe, new JsonObject().put("event", "export.release")).get(0);
            assertEquals(id, r.getString("export_id"));
            assertEquals("session-end", r.getString("cause"));
            assertEquals(true, r.getBoolean("ok"));
            assertWho(r);

            ExportedBuffer live = probe.export(GPU, 2, 0, 4096);
            live.fd().close();
            d.daemon().stop();
            List<JsonObject> all = records(journal(), 4);
            JsonObject shutdown = all.get(all.size() - 2);
            assertEquals("export.release", shutdown.getString("event"));
            assertEquals(live.id(), shutdown.getString("export_id"));
            assertEquals("shutdown", shutdown.getString("cause"));
            assertEquals("daemon.stop", all.get(all.size() - 1).getString("event"));
        }
    }

    @Test
    void rotationKeepsNFilesAndQueriesStillReadTheOldest() throws Exception {
        Consumer<JsonObject> small = c -> c.put("audit", new JsonObject().put("max_bytes", 4096).put("keep", 2));
        try (TestDaemon d = TestDaemon.start(dir, small); VfioExportClient c = d.connect()) {
            ExportedBuffer held = c.export(GPU, 0, 0, 4096); // live across every rotation
            held.fd().close();
            for (int i = 0; i < 60; i++) {
                ExportedBuffer b = c.export(NVME, 2, 0, 4096);
                c.request("export.release", new JsonObject().put("export_id", b.id()));
                b.fd().close();
            }
            List<JsonObject> all = queried(c, new JsonObject().put("limit", 1000));
            List<JsonObject> retained = records(journal(), 5);
            assertEquals(retained, all, "the query reads the current file and both rotated ones, oldest first");
            assertTrue(Files.exists(journal().resolveSibling(journal().getFileName() + ".2")));
            assertFalse(Files.exists(journal().resolveSibling(journal().getFileName() + ".3")), "keep 2: no third");
            assertFalse(events(all).contains("daemon.start"), "rotated out by now");
            for (int i = 0; i <= 2; i++) {
                Path p = i == 0 ? journal() : journal().resolveSibling(journal().getFileName() + "." + i);
                String checkpoint = Files.readAllLines(p).get(0);
                assertTrue(Files.size(p) <= checkpoint.length() + 1 + 4096, p + " is " + Files.size(p) + " bytes");
                JsonObject first = new JsonObject(checkpoint);
                assertEquals("journal.rotated", first.getString("event"), "each file starts with the run's checkpoint");
                assertEquals(List.of(held.id()), first.getJsonArray("exports").stream()
                        .map(o -> ((JsonObject) o).getString("export_id")).toList());
            }
            for (int i = 1; i < all.size(); i++) {
                assertEquals(all.get(i - 1).getLong("seq") + 1, all.get(i).getLong("seq"), "no seq gap across files");
            }
            // the oldest retained export record is found by a filtered query too
            JsonObject oldest = all.stream().filter(r -> "export.create".equals(r.getString("event"))).findFirst().orElseThrow();
            List<JsonObject> found = queried(c, new JsonObject().put("device", oldest.getString("device"))
                    .put("event", "export.create").put("limit", 1));
            assertEquals(List.of(oldest), found);
        }
    }

    @Test
    void queryFiltersByDeviceUidTimeAndPages() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir); VfioExportClient c = d.connect()) {
            ExportedBuffer n = c.export(NVME, 2, 0, 4096);
            n.fd().close();
            List<JsonObject> before = queried(c, new JsonObject());
            Instant middle = Instant.parse(before.get(before.size() - 1).getString("ts")).plusMillis(1);
            Wait.until("the clock to pass " + middle, 5_000, () -> Instant.now().isAfter(middle));
            ExportedBuffer g = c.export(GPU, 2, 0, 4096);
            g.fd().close();
            c.request("device.reset", new JsonObject().put("device", NVME));

            assertEquals(List.of("export.create", "device.reset"), events(queried(c, new JsonObject().put("device", NVME))));
            assertEquals(List.of("export.create"), events(queried(c, new JsonObject().put("device", GPU))));
            long uid = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
            assertEquals(List.of("daemon.start", "export.create", "export.create", "device.reset"),
                    events(queried(c, new JsonObject().put("uid", uid))), "the daemon's records are its uid's too");
            assertEquals(List.of(), queried(c, new JsonObject().put("uid", uid + 12345)));

            List<JsonObject> since = queried(c, new JsonObject().put("since", middle.toString()));
            assertEquals(List.of(g.id()), since.stream().filter(r -> r.containsKey("export_id"))
                    .map(r -> r.getString("export_id")).toList());
            List<JsonObject> until = queried(c, new JsonObject().put("until", before.get(before.size() - 1).getString("ts")));
            assertEquals(before, until, "until is inclusive");
            String offset = middle.atOffset(java.time.ZoneOffset.ofHours(2)).toString();
            assertEquals(since, queried(c, new JsonObject().put("since", offset)), "an offset is converted to UTC");

            // pages: limit, truncated, next_after_seq
            JsonObject page1 = query(c, new JsonObject().put("limit", 2));
            assertEquals(2, page1.getJsonArray("records").size());
            assertTrue(page1.getBoolean("truncated"));
            JsonObject page2 = query(c, new JsonObject().put("limit", 2).put("after_seq", page1.getLong("next_after_seq")));
            assertEquals(List.of("export.create", "device.reset"), events(page2.getJsonArray("records").stream()
                    .map(o -> (JsonObject) o).toList()));
            assertFalse(page2.getBoolean("truncated"));
            assertFalse(page2.containsKey("next_after_seq"));

            for (JsonObject badParams : List.of(new JsonObject().put("limit", 0), new JsonObject().put("limit", 1001),
                    new JsonObject().put("since", "yesterday"), new JsonObject().put("uid", -1),
                    new JsonObject().put("device", 3), new JsonObject().put("evnt", "x"))) {
                RpcError e = assertThrows(RpcError.class, () -> query(c, badParams), badParams.encode());
                assertEquals(-32602, e.code(), badParams.encode() + ": " + e.getMessage());
            }
        }
    }

    @Test
    void aRefusedClientIsRecordedAtMostOncePerSecondPerUid() throws Exception {
        Consumer<JsonObject> nobody = c -> c.put("policy", new JsonObject().put("allow_uids", new JsonArray())
                .put("allow_gids", new JsonArray()).put("allow_daemon_user", false));
        int attempts = 20;
        long t0 = System.nanoTime();
        try (TestDaemon d = TestDaemon.start(dir, nobody)) {
            for (int i = 0; i < attempts; i++) {
                try (VfioExportClient c = d.connect()) {
                    RpcError e = assertThrows(RpcError.class, () -> c.request("device.list"));
                    assertEquals(-32003, e.code());
                }
            }
        }
        long seconds = (System.nanoTime() - t0) / 1_000_000_000;
        List<JsonObject> refused = records(journal(), 4).stream()
                .filter(r -> "connection.refused".equals(r.getString("event"))).toList();
        assertTrue(!refused.isEmpty() && refused.size() <= 1 + seconds, "one a second at most: " + refused);
        long suppressed = refused.stream().mapToLong(r -> r.getLong("suppressed", 0L)).sum();
        assertTrue(refused.size() + suppressed <= attempts, "suppressed ones are counted once: " + refused);
        assertEquals("device.list", refused.get(0).getString("method"));
        assertWho(refused.get(0));
    }

    @Test
    void theRefusalThrottleLetsOnePerSecondPerUidAndCountsTheRest() {
        RefusalThrottle t = new RefusalThrottle();
        long s = 1_000_000_000L;
        assertEquals(0, t.admit(1000, 5 * s));
        assertEquals(-1, t.admit(1000, 5 * s + s / 2));
        assertEquals(0, t.admit(1001, 5 * s + s / 2), "another uid has its own second");
        assertEquals(-1, t.admit(1000, 6 * s - 1));
        assertEquals(2, t.admit(1000, 6 * s), "a second later: written, with the two suppressed meanwhile");
        assertEquals(-1, t.admit(1000, 6 * s + 1));
    }

    @Test
    void anotherAllowedUserSeesOnlyItsOwnRecords() throws Exception {
        Assumptions.assumeTrue((Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid") == 0,
                "needs root to run a client as another uid");
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv")) || Files.isExecutable(Path.of("/bin/setpriv")),
                "needs setpriv (util-linux) to run a client as uid 65534");
        Path python = Path.of("/usr/bin/python3");
        Assumptions.assumeTrue(Files.isExecutable(python), "needs a system-wide python3 that uid 65534 may run");
        for (Path p = dir.getParent(); p != null; p = p.getParent()) {
            Assumptions.assumeTrue(Files.getPosixFilePermissions(p).contains(PosixFilePermission.OTHERS_EXECUTE),
                    p + " is not searchable by other uids (java.io.tmpdir)");
        }
        Consumer<JsonObject> alsoNobody = c -> c.getJsonObject("policy").put("allow_uids", new JsonArray().add(0).add(65534));
        try (TestDaemon d = TestDaemon.start(dir, alsoNobody); VfioExportClient root = d.connect()) {
            // only the test's own directory is opened up, never one above it
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.setPosixFilePermissions(d.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
            ExportedBuffer mine = root.export(GPU, 2, 0, 4096);
            mine.fd().close();
            String py = String.join("\n",
                    "import socket, json, sys",
                    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rb')",
                    "json.loads(f.readline())",
                    "def call(i, m, p):",
                    "    s.sendall(json.dumps({'jsonrpc': '2.0', 'id': i, 'method': m, 'params': p}).encode() + b'\\n')",
                    "    return json.loads(f.readline())",
                    "call(1, 'export.create', {'device': '0000:01:00.0', 'region': 2, 'offset': 0, 'length': 4096})",
                    "own = call(2, 'audit.query', {})['result']['records']",
                    "other = call(3, 'audit.query', {'uid': 0})['error']['code']",
                    "print(json.dumps({'own': own, 'other': other}), flush=True)");
            Process p = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    python.toString(), "-I", "-c", py, d.socket().toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), out);
            JsonObject seen = new JsonObject(out);
            assertEquals(-32602, seen.getInteger("other"), "another uid's records are not its to ask for");
            List<JsonObject> own = seen.getJsonArray("own").stream().map(o -> (JsonObject) o).toList();
            assertEquals(List.of("export.create"), events(own), "neither root's export nor the daemon's records");
            assertEquals(65534, own.get(0).getInteger("uid"));
            assertEquals(python.toRealPath().toString(), own.get(0).getString("exe"));
            // root sees both users' records
            List<JsonObject> all = queried(root, new JsonObject().put("event", "export.create"));
            assertEquals(List.of(0, 65534), all.stream().map(r -> r.getInteger("uid")).toList());
        }
    }

    @Test
    void aRecoveredRecordIsNarrowedToTheExportsOfTheUserWhoAsks() {
        JsonObject recovered = new JsonObject().put("ts", "2026-01-01T00:00:00.000Z").put("seq", 7)
                .put("event", "daemon.recovered").put("uid", 0).put("exports", new JsonArray()
                        .add(new JsonObject().put("export_id", "a").put("device", NVME).put("uid", 1000))
                        .add(new JsonObject().put("export_id", "b").put("device", GPU).put("uid", 1001)));
        AuditQuery everyone = new AuditQuery(null, null, null, null, null, 0, 10, null);
        assertEquals(recovered, everyone.match(recovered));
        AuditQuery user1000 = new AuditQuery(null, null, null, null, null, 0, 10, 1000L);
        assertEquals(List.of("a"), user1000.match(recovered).getJsonArray("exports").stream()
                .map(o -> ((JsonObject) o).getString("export_id")).toList());
        assertEquals(2, recovered.getJsonArray("exports").size(), "the record itself is not changed");
        assertNull(new AuditQuery(null, null, null, null, null, 0, 10, 1002L).match(recovered), "none of 1002's");
        assertNull(new AuditQuery(GPU, null, null, null, null, 0, 10, 1000L).match(recovered), "1000 had none on the GPU");
        assertEquals(recovered, new AuditQuery(GPU, null, null, null, null, 0, 10, null).match(recovered));
        assertEquals(recovered, new AuditQuery(null, 1001L, null, null, null, 0, 10, null).match(recovered));
    }

    @Test
    void disabledMeansNoJournalAndNoQueryMethod() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.put("audit", new JsonObject().put("enabled", false)));
             VfioExportClient c = d.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0, 4096);
            b.fd().close();
            assertFalse(c.request("rpc.methods").getJsonArray("methods").contains("audit.query"));
            assertEquals(-32601, assertThrows(RpcError.class, () -> query(c, new JsonObject())).code());
        }
        assertFalse(Files.exists(journal()));
    }

    @Test
    void twoDaemonsCannotShareAJournal() throws Exception {
        Path shared = dir.resolve("shared.jsonl");
        Path other = Files.createDirectory(dir.resolve("other"));
        try (TestDaemon d = TestDaemon.start(dir, c -> c.put("audit", new JsonObject().put("path", shared.toString())))) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> TestDaemon.start(other,
                    c -> c.put("audit", new JsonObject().put("path", shared.toString()))));
            assertTrue(e.getMessage().contains("another vfio-exportd writes the audit journal " + shared), e.getMessage());
            assertEquals("daemon.start", records(shared, 4).get(0).getString("event"));
        }
    }

    private interface Check<T> {
        T get() throws Exception;
    }

    private static <T> T call(Check<T> c) {
        try {
            return c.get();
        } catch (Exception e) {
            throw new UncheckedIOException(new IOException(e));
        }
    }
}

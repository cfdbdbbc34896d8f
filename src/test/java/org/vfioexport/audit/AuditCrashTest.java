package org.vfioexport.audit;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.Wait;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** The journal across a daemon killed with SIGKILL and started again on the same socket, as real processes. */
class AuditCrashTest {
    private static final String DIED = "stopped without a clean shutdown";

    @TempDir
    Path dir;

    private Path journal() {
        return dir.resolve("vfio-export.audit.jsonl");
    }

    /** "(uid U, pid P, EXE)": how the report names this test JVM as the holder of an export. */
    private static String me() throws Exception {
        return "(uid " + Files.getAttribute(Path.of("/proc/self"), "unix:uid") + ", pid " + ProcessHandle.current().pid()
                + ", " + Posix.readlink("/proc/self/exe") + ")";
    }

    private static List<JsonObject> recovered(VfioExportClient c) throws Exception {
        return c.request("audit.query", new JsonObject().put("event", "daemon.recovered")).getJsonArray("records")
                .stream().map(o -> (JsonObject) o).toList();
    }

    private static List<String> ids(JsonArray exports) {
        return exports.stream().map(o -> ((JsonObject) o).getString("export_id")).toList();
    }

    @Test
    void afterSigkillTheRestartReportsExactlyTheExportsThatWereLive() throws Exception {
        long firstPid;
        String live;
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient c = d.connect()) {
            firstPid = d.pid();
            ExportedBuffer a = c.export(NVME, 2, 0, 4096);
            ExportedBuffer b = c.export(NVME, 2, 4096, 8192);
            c.request("export.release", new JsonObject().put("export_id", a.id()));
            live = b.id();
            d.kill(); // answers wait for their records: both exports and the release are in the file already
            a.fd().close();
            b.fd().close();
        }
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient c = d.connect()) {
            String line = "the previous run (pid " + firstPid + ") " + DIED;
            Wait.until("the crash report on stderr", 10_000, () -> d.stderr().contains(line));
            String report = d.stderr().lines().filter(l -> l.contains(line)).findFirst().orElseThrow();
            assertTrue(report.endsWith("; 1 export was live: " + live + " " + me()), report);

            List<JsonObject> r = recovered(c);
            assertEquals(1, r.size(), r.toString());
            assertEquals(firstPid, r.get(0).getLong("previous_pid"));
            assertEquals(d.pid(), r.get(0).getLong("pid"), "written by the new run");
            JsonArray exports = r.get(0).getJsonArray("exports");
            assertEquals(List.of(live), ids(exports));
            JsonObject e = exports.getJsonObject(0);
            assertEquals(NVME, e.getString("device"));
            assertEquals(8192, e.getLong("size"));
            assertEquals(ProcessHandle.current().pid(), e.getLong("pid"));
            // found by device and by the holder's uid, not by another device
            assertEquals(1, c.request("audit.query", new JsonObject().put("event", "daemon.recovered").put("device", NVME))
                    .getJsonArray("records").size());
            assertEquals(0, c.request("audit.query", new JsonObject().put("event", "daemon.recovered").put("device", GPU))
                    .getJsonArray("records").size());
            // this run ends cleanly, with an export still held: released on record, with cause shutdown
            ExportedBuffer held = c.export(GPU, 2, 0, 4096);
            held.fd().close();
            assertEquals(0, d.terminate(30_000));
            List<JsonObject> lines = Files.readAllLines(journal()).stream().map(JsonObject::new).toList();
            JsonObject release = lines.get(lines.size() - 2);
            assertEquals(List.of("export.release", held.id(), "shutdown"), List.of(release.getString("event"),
                    release.getString("export_id"), release.getString("cause")));
            assertEquals("daemon.stop", lines.get(lines.size() - 1).getString("event"));
        }
        // so the next start reports nothing
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient c = d.connect()) {
            assertEquals(1, recovered(c).size(), "only the one of the crash before");
            c.request("server.info"); // stderr is read asynchronously: anything start-up printed there is in by now
            assertFalse(d.stderr().contains(DIED), d.stderr());
        }
    }

    @Test
    void aRunWhoseStartWasRotatedAwayIsStillReportedFromTheCheckpointAndATornLineIsSkipped() throws Exception {
        java.util.function.Consumer<JsonObject> small = conf -> conf.put("audit", new JsonObject().put("max_bytes", 4096)
                .put("keep", 1));
        long firstPid;
        String live;
        try (DaemonProcess d = DaemonProcess.start(dir, small); VfioExportClient c = d.connect()) {
            firstPid = d.pid();
            ExportedBuffer held = c.export(GPU, 0, 0, 4096);
            live = held.id();
            held.fd().close();
            for (int i = 0; i < 40; i++) {
                ExportedBuffer b = c.export(NVME, 2, 0, 4096);
                c.request("export.release", new JsonObject().put("export_id", b.id()));
                b.fd().close();
            }
            d.kill();
        }
        String all = Files.readString(journal()) + Files.readString(journal().resolveSibling(journal().getFileName() + ".1"));
        assertFalse(all.contains("\"daemon.start\""), "the start is rotated away");
        // a host crash can leave a torn last line
        Files.writeString(journal(), "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":99999,\"eve", StandardCharsets.UTF_8,
                StandardOpenOption.APPEND);
        try (DaemonProcess d = DaemonProcess.start(dir, small); VfioExportClient c = d.connect()) {
            String line = "the previous run (pid " + firstPid + ") " + DIED;
            Wait.until("the crash report on stderr", 10_000, () -> d.stderr().contains(line));
            String report = d.stderr().lines().filter(l -> l.contains(line)).findFirst().orElseThrow();
            assertTrue(report.endsWith("; 1 export was live: " + live + " " + me()), report);
            assertEquals(List.of(live), ids(recovered(c).get(0).getJsonArray("exports")));
        }
        // the torn fragment stayed on its own line: every other line is a record
        List<String> lines = Files.readAllLines(journal());
        long torn = lines.stream().filter(l -> l.endsWith("\"eve")).count();
        assertEquals(1, torn);
        for (String l : lines) if (!l.endsWith("\"eve")) new JsonObject(l);
    }
}

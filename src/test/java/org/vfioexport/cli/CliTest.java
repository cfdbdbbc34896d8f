package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.VfioExportClient;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.TestDaemon;
import org.vfioexport.testutil.Wait;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/** The command-line client as a separate process against a daemon. */
class CliTest {
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

    record Run(int exit, String out, String err) {}

    private static Process spawn(String... args) throws Exception {
        List<String> a = new ArrayList<>(List.of("--socket", daemon.socket().toString()));
        a.addAll(List.of(args));
        return new ProcessBuilder(DaemonProcess.javaCommand("org.vfioexport.app.Main", a.toArray(String[]::new))).start();
    }

    private static Run run(String... args) throws Exception {
        Process p = spawn(args);
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return new Run(p.exitValue(), out, err);
    }

    @Test
    void devicesPrintsATable() throws Exception {
        Run r = run("devices");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().split("\n");
        assertTrue(lines[0].startsWith("DEVICE        STATE  MEMORY  SEQ  EXPORTS  RESET  NAME"), r.out());
        assertTrue(lines[1].startsWith(NVME + "  ready"), r.out());
        assertEquals(3, lines.length);
    }

    @Test
    void deviceShowsItsRegions() throws Exception {
        Run r = run("device", NVME);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("REGION  NAME    KIND    SIZE    BYTES      MMAP  PREFETCH"), r.out());
        assertTrue(r.out().contains("2       BAR2    mmio    64 MiB  0x4000000  yes   yes"), r.out());
    }

    @Test
    void errorsAreOneLineAndANonZeroExit() throws Exception {
        Run r = run("device", "0000:09:00.0");
        assertEquals(1, r.exit());
        assertEquals("vfio-export: error: no such device: 0000:09:00.0 (error -32001)\n", r.err());
        Run size = run("export", NVME, "--region", "2", "--length", "lots");
        assertEquals(1, size.exit());
        assertTrue(size.err().startsWith("vfio-export: error: not a size: 'lots'"), size.err());
        Run none = new Run(0, "", "");
        Process p = new ProcessBuilder(DaemonProcess.javaCommand("org.vfioexport.app.Main", "--socket",
                dir.resolve("nobody.sock").toString(), "devices")).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(1, p.exitValue());
        assertTrue(err.contains("no such socket (is vfio-exportd running?)"), err + none);
    }

    @Test
    void resetMemoryAndMethods() throws Exception {
        Run reset = run("reset", NVME);
        assertEquals(0, reset.exit(), reset.err());
        assertTrue(reset.out().startsWith("reset " + NVME + ": revoked 0, restored 0, "), reset.out());
        Run off = run("memory", NVME, "off");
        assertEquals("memory off for " + NVME + ": revoked 0, restored 0\n", off.out());
        Run on = run("memory", NVME, "on");
        assertEquals("memory on for " + NVME + ": revoked 0, restored 0\n", on.out());
        Run methods = run("methods");
        assertTrue(methods.out().startsWith("rpc.methods\nserver.info\n"), methods.out());
    }

    @Test
    void exportHoldsTheExportUntilInterrupted() throws Exception {
        int before = daemon.daemon().service().devices().liveExports();
        Process p = spawn("export", NVME, "--region", "2", "--offset", "4K", "--length", "2M");
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String first = out.readLine();
        assertTrue(first != null && first.startsWith("exported ") && first.contains("0x1000+0x200000") && first.endsWith("(2 MiB)"),
                String.valueOf(first));
        assertEquals("holding it; press Ctrl-C to release", out.readLine());
        assertEquals(before + 1, daemon.daemon().service().devices().liveExports());
        p.toHandle().destroy(); // SIGTERM, like Ctrl-C (Process.destroy would also close our end of its output)
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());
        assertTrue(out.readLine().startsWith("released "));
        Wait.untilEquals("the export released", 10_000, before, () -> daemon.daemon().service().devices().liveExports());
    }

    @Test
    void watchPrintsEventsAsJson() throws Exception {
        Process p = spawn("watch", "--json");
        try (VfioExportClient c = daemon.connect()) {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            // the watcher subscribes after it connects: reset until it reports an event
            Wait.until("the watcher to be subscribed", 30_000, () -> {
                try {
                    return c.request("server.info").getInteger("subscribers") > 0;
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            c.request("device.reset", new JsonObject().put("device", NVME));
            JsonObject e = new JsonObject(out.readLine());
            assertEquals(NVME, e.getString("device"));
            assertEquals("device.state", e.getString("type"));
            assertEquals("resetting", e.getString("state"));
        } finally {
            p.destroy();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }
}

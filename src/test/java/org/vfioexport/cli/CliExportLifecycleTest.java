package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.testutil.DaemonProcess;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * {@code export} watches its own export: when the daemon takes it back or goes away, the command says so and ends
 * with its own status, instead of claiming to hold an export that no longer exists. Real daemon processes.
 */
@Timeout(120)
class CliExportLifecycleTest {
    @TempDir
    Path dir;

    @Test
    void exportEndsWithin2SecondsWhenTheDaemonIsKilled() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir)) {
            Process p = CliTest.spawn(d.socket(), "export", NVME, "--region", "2", "--length", "4K");
            try {
                BufferedReader out = reader(p);
                String first = out.readLine();
                assertTrue(first != null && first.startsWith("exported "), String.valueOf(first));
                String id = first.substring("exported ".length(), first.indexOf(": "));
                assertEquals("holding it; press Ctrl-C to release", out.readLine());

                d.kill(); // SIGKILL: no shutdown, the kernel closes the daemon's end
                long killed = System.nanoTime();
                assertTrue(p.waitFor(2, TimeUnit.SECONDS), "export still running 2 s after the daemon was killed");
                long ms = (System.nanoTime() - killed) / 1_000_000;
                CliTest.Run r = CliTest.finish(p);
                assertEquals(Exit.NO_DAEMON, r.exit(), r.err());
                assertEquals("vfio-export: the daemon closed the connection (it stopped or was killed): " + id
                        + " is gone\n", r.err());
                assertTrue(ms < 2000, ms + " ms");
            } finally {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void exportSaysWhenTheDaemonReleasesItAtShutdown() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir)) {
            Process p = CliTest.spawn(d.socket(), "--json", "export", NVME, "--region", "2", "--length", "4K");
            try {
                BufferedReader out = reader(p);
                JsonObject export = new JsonObject(out.readLine());
                String id = export.getString("export_id");
                assertEquals("live", export.getString("state"));

                assertEquals(0, d.terminate(30_000)); // SIGTERM: every export is released with cause shutdown
                assertTrue(p.waitFor(30, TimeUnit.SECONDS));
                String rest = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                CliTest.Run r = CliTest.finish(p);
                assertEquals(Exit.EXPORT_LOST, r.exit(), r.err());
                String last = rest.lines().reduce((a, b) -> b).orElse("");
                JsonObject released = new JsonObject(last);
                assertEquals("export.released", released.getString("type"));
                assertEquals(id, released.getString("export_id"));
                assertEquals("shutdown", released.getString("cause"));
                JsonObject error = new JsonObject(r.err().strip()).getJsonObject("error");
                assertEquals(id + " was released by the daemon (cause shutdown)", error.getString("message"));
            } finally {
                p.destroyForcibly();
            }
        }
    }

    private static BufferedReader reader(Process p) {
        return new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    }
}

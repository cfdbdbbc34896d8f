package org.vfioexport.app;

import io.vertx.core.json.JsonArray;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.SharedDirectoriesUnchanged;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What systemd and an operator see: readiness over NOTIFY_SOCKET, the pidfile, the socket's mode and group. */
@ExtendWith(SharedDirectoriesUnchanged.class)
class ServiceIntegrationTest {
    @TempDir
    Path dir;

    @Test
    void readyIsSentOnceTheSocketAcceptsAndStoppingAtStop() throws Exception {
        Path notify = dir.resolve("notify.sock");
        int receiver = Posix.bindDatagram(notify.toString());
        try {
            Path pidfile = dir.resolve("vfio-exportd.pid");
            DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("vfio-export.sock"), c -> { },
                    List.of("env", "NOTIFY_SOCKET=" + notify), "--pidfile", pidfile.toString());
            try {
                String ready = receive(receiver, 60_000);
                assertTrue(ready.startsWith("READY=1\n"), ready);
                assertTrue(ready.contains("MAINPID=" + d.pid() + "\n"), ready);
                // READY means it: a client is served at once
                try (VfioExportClient c = d.connect()) {
                    assertEquals(2, c.request("device.list").getJsonArray("devices").size());
                }
                assertEquals(d.pid() + "\n", Files.readString(pidfile));
                assertEquals(0, d.terminate(10_000));
                assertTrue(receive(receiver, 10_000).startsWith("STOPPING=1\n"));
                assertFalse(Files.exists(pidfile), "the pidfile is removed at a clean stop");
            } finally {
                d.close();
            }
        } finally {
            Posix.close(receiver);
        }
    }

    @Test
    void socketModeAndGroupAreThoseConfigured() throws Exception {
        int gid = (Integer) Files.getAttribute(dir, "unix:gid") == 65534 ? 0 : 65534;
        try (DaemonProcess d = DaemonProcess.start(dir, c -> c.put("socket_mode", "0600").put("socket_group", String.valueOf(gid)))) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(d.socket())));
            assertEquals(gid, (Integer) Files.getAttribute(d.socket(), "unix:gid"));
            try (var s = Files.list(dir)) {
                assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".vfio-export.sock.")),
                        "the staging directory is gone");
            }
        }
    }

    @Test
    void aBadSocketModeIsRefusedBeforeAnythingIsCreated() throws Exception {
        DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("run/x.sock"), c -> c.put("socket_mode", "0777"));
        assertEquals(1, d.awaitExit(60_000));
        assertTrue(d.stderr().contains("socket_mode 0777 has execute bits"), d.stderr());
        assertFalse(Files.exists(dir.resolve("run")));
    }

    /**
     * Another uid whose supplementary groups include the socket's group gets in (file mode, then policy by
     * group); one outside that group does not.
     */
    @Test
    void aUidInTheSocketsGroupGetsInAndOneOutsideDoesNot() throws Exception {
        Assumptions.assumeTrue(Daemon.daemonUid() == 0, "needs root to run clients as other uids");
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv")), "needs setpriv (util-linux)");
        Path python = Path.of("/usr/bin/python3");
        Assumptions.assumeTrue(Files.isExecutable(python), "needs a system-wide python3 that other uids may run");
        int group = 4242;
        // the test's own directory must be traversable by the other uids; nothing above it is touched
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        try (DaemonProcess d = DaemonProcess.start(dir, c -> c.put("socket_group", String.valueOf(group))
                .put("policy", c.getJsonObject("policy").put("allow_uids", new JsonArray().add(0))
                        .put("allow_gids", new JsonArray().add(group)).put("allow_daemon_user", false)))) {
            assertEquals("member allowed", runAs(python, d.socket(), "--groups=" + group));
            assertEquals("connect refused", runAs(python, d.socket(), "--clear-groups"));
        }
    }

    private static String runAs(Path python, Path socket, String groups) throws Exception {
        String py = String.join("\n",
                "import socket, json, sys",
                "s = socket.socket(socket.AF_UNIX)",
                "try:",
                "    s.connect(sys.argv[1])",
                "except PermissionError:",
                "    print('connect refused'); sys.exit(0)",
                "f = s.makefile('rb'); json.loads(f.readline())",
                "s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\"}\\n')",
                "r = json.loads(f.readline())",
                "print('member', 'allowed' if 'result' in r else r['error']['code'], flush=True)");
        Process p = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", groups, python.toString(), "-I",
                "-c", py, socket.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the client did not finish");
        return out;
    }

    private static String receive(int sock, long timeoutMs) throws Exception {
        if ((Posix.poll(sock, Posix.POLLIN, (int) timeoutMs) & Posix.POLLIN) == 0) {
            throw new AssertionError("no notification within " + timeoutMs + " ms");
        }
        byte[] buf = new byte[4096];
        Posix.Received r = Posix.recvWithFds(sock, buf, 1);
        return new String(buf, 0, r.length(), StandardCharsets.UTF_8);
    }
}

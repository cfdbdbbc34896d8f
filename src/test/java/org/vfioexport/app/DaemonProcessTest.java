package org.vfioexport.app;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.SharedDirectoriesUnchanged;
import org.vfioexport.testutil.Wait;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** The daemon as a real process: start-up rules, clean shutdown, and no fd leaks whatever clients do. */
@ExtendWith(SharedDirectoriesUnchanged.class) // chmods happen here: never above the test's own directory
class DaemonProcessTest {
    @TempDir
    Path dir;

    /** Connections open on the daemon, as it reports them. */
    private static int clients(VfioExportClient probe) throws Exception {
        return probe.request("server.info").getInteger("clients");
    }

    /**
     * The daemon's fd count at rest: after every event loop has served a connection and an export (so lazily
     * opened resources exist), with only the probe connected.
     */
    private static long baseline(DaemonProcess d, VfioExportClient probe) throws Exception {
        List<VfioExportClient> warm = new ArrayList<>();
        for (int i = 0; i < 8; i++) warm.add(d.connect());
        for (VfioExportClient c : warm) {
            ExportedBuffer b = c.export(NVME, 2, 0, 4096);
            c.request("export.release", new JsonObject().put("export_id", b.id()));
            b.fd().close();
            c.close();
        }
        Wait.untilEquals("warm-up connections to close", 10_000, 1, () -> call(() -> clients(probe)));
        return d.fdCount();
    }

    private interface Check<T> {
        T get() throws Exception;
    }

    private static <T> T call(Check<T> c) {
        try {
            return c.get();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void noFdLeakAfterAThousandBadRequests() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient probe = d.connect()) {
            long base = baseline(d, probe);
            try (VfioExportClient c = d.connect()) {
                for (int i = 0; i < 1000; i++) {
                    switch (i % 5) {
                        case 0 -> c.sendLine("{not json");
                        case 1 -> c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":{\"device\":\"" + NVME + "\",\"region\":2,\"offset\":-1,\"length\":4096}}");
                        case 2 -> c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no.such\"}");
                        case 3 -> c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":{\"device\":\"" + NVME + "\",\"region\":2,\"offset\":0,\"length\":1048576000}}");
                        default -> c.sendLine("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":{\"device\":\"" + GPU + "\",\"region\":5,\"offset\":0,\"length\":4096}}, 7]");
                    }
                    assertTrue(c.read(20_000).json() != null);
                }
                assertEquals(0, c.unclaimedFds());
            }
            Wait.untilEquals("the daemon's fd count back to its baseline", 20_000, base, d::fdCount);
            assertEquals(0, probe.request("server.info").getInteger("exports"));
        }
    }

    @Test
    void noFdLeakAfterAHundredClientsThatExportAndDisconnect() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient probe = d.connect()) {
            long base = baseline(d, probe);
            for (int i = 0; i < 100; i++) {
                try (VfioExportClient c = d.connect()) {
                    ExportedBuffer b = c.export(i % 2 == 0 ? NVME : GPU, 2, 0, 8192);
                    assertEquals(8192, b.fd().size());
                    b.fd().close();
                } // no release: the session's end does it
            }
            Wait.untilEquals("every export released by its session's end", 20_000, 0,
                    () -> call(() -> probe.request("server.info").getInteger("exports")));
            Wait.untilEquals("the daemon's fd count back to its baseline", 20_000, base, d::fdCount);
        }
    }

    @Test
    void noFdLeakAfterAClientIsKilledMidRequest() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient probe = d.connect()) {
            long base = baseline(d, probe);
            // a real client process: exports, then sends half a request and waits to be killed
            String py = String.join("\n",
                    "import socket, sys, time",
                    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
                    "buf = b''; fds = []",
                    "def line():",
                    "    global buf",
                    "    while b'\\n' not in buf:",
                    "        data, f, _, _ = socket.recv_fds(s, 65536, 8); fds.extend(f); buf += data",
                    "    l, buf = buf.split(b'\\n', 1); return l",
                    "line()",
                    "s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":{\"device\":\"" + NVME + "\",\"region\":2,\"offset\":0,\"length\":4096}}\\n')",
                    "line()",
                    "s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"export.cre')",
                    "print('ready', len(fds), flush=True)",
                    "time.sleep(600)");
            Process p = new ProcessBuilder("python3", "-c", py, d.socket().toString()).redirectErrorStream(true).start();
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
                assertEquals("ready 1", out.readLine(), "the client exported and received its fd");
                assertEquals(1, probe.request("server.info").getInteger("exports"));
            } finally {
                p.destroyForcibly(); // SIGKILL
                assertTrue(p.waitFor(20, TimeUnit.SECONDS));
            }
            Wait.untilEquals("the killed client's export released", 20_000, 0,
                    () -> call(() -> probe.request("server.info").getInteger("exports")));
            Wait.untilEquals("the daemon's fd count back to its baseline", 20_000, base, d::fdCount);
        }
    }

    @Test
    void sigtermReleasesEveryExportWithCauseShutdownAndRemovesTheSocket() throws Exception {
        DaemonProcess d = DaemonProcess.start(dir);
        try (VfioExportClient sub = d.connect(); VfioExportClient owner = d.connect()) {
            sub.request("events.subscribe", new JsonObject());
            ExportedBuffer a = owner.export(NVME, 2, 0, 4096), b = owner.export(GPU, 0, 0, 4096);
            assertTrue(Files.exists(d.socket()));
            d.process().destroy(); // SIGTERM
            List<String> released = new ArrayList<>();
            try {
                while (released.size() < 2) {
                    JsonObject e = sub.nextEvent(20_000);
                    if ("export.released".equals(e.getString("type"))) {
                        assertEquals("shutdown", e.getString("cause"), e.encode());
                        released.add(e.getString("export_id"));
                    }
                }
            } finally {
                assertEquals(0, d.awaitExit(30_000), "a clean exit; stderr: " + d.stderr());
            }
            assertEquals(List.of(a.id(), b.id()).stream().sorted().toList(), released.stream().sorted().toList());
            assertFalse(Files.exists(d.socket()), "the socket file is removed");
            assertTrue(sub.awaitClosed(10_000));
            a.fd().close();
            b.fd().close();
        } finally {
            d.close();
        }
    }

    @Test
    void aSecondDaemonOnTheSameSocketIsAClearError() throws Exception {
        try (DaemonProcess first = DaemonProcess.start(dir)) {
            DaemonProcess second = DaemonProcess.spawn(dir, first.socket(), c -> { });
            assertEquals(1, second.awaitExit(60_000));
            assertTrue(second.stderr().contains("cannot start: another vfio-exportd (pid " + first.pid() + ")"),
                    second.stderr());
            try (VfioExportClient c = first.connect()) {
                assertEquals(2, c.request("device.list").getJsonArray("devices").size(), "the first one is untouched");
            }
        }
    }

    @Test
    void aStaleSocketFromACrashedRunIsReplaced() throws Exception {
        DaemonProcess crashed = DaemonProcess.start(dir);
        crashed.kill(); // SIGKILL: nobody removes the socket
        assertTrue(Files.exists(crashed.socket()), "a crash leaves the socket file");
        try (DaemonProcess d = DaemonProcess.start(dir); VfioExportClient c = d.connect()) {
            assertEquals(d.pid(), c.hello().getLong("pid"));
        }
    }

    @Test
    void aLiveServerWithoutTheLockIsNotReplaced() throws Exception {
        Path socket = dir.resolve("vfio-export.sock");
        try (ServerSocketChannel other = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            other.bind(UnixDomainSocketAddress.of(socket));
            DaemonProcess d = DaemonProcess.spawn(dir, socket, c -> { });
            assertEquals(1, d.awaitExit(60_000));
            assertTrue(d.stderr().contains("a live server answers on " + socket), d.stderr());
            assertTrue(Files.exists(socket));
        }
    }

    @Test
    void theExamplePythonClientWorks() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir)) {
            Process p = new ProcessBuilder("python3", Conf.home().resolve("docs/example_client.py").toString(),
                    "--socket", d.socket().toString(), "--device", NVME, "--region", "2", "--length", "0x3000")
                    .redirectErrorStream(true).start();
            List<JsonObject> steps = new ArrayList<>();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String l;
                while ((l = r.readLine()) != null) steps.add(new JsonObject(l));
            }
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), steps.toString());
            JsonObject exported = steps.stream().filter(s -> "exported".equals(s.getString("step"))).findFirst().orElseThrow();
            assertEquals(0x3000, exported.getLong("size"));
            assertEquals(0x3000, exported.getLong("fd_size"));
            JsonObject released = steps.get(steps.size() - 1);
            assertEquals(new JsonArray().add("export.created").add("export.released"), released.getJsonArray("events"));
        }
    }

    @Test
    void anotherUidIsDeniedByPolicy() throws Exception {
        Assumptions.assumeTrue(Daemon.daemonUid() == 0, "needs root to run a client as another uid");
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv")) || Files.isExecutable(Path.of("/bin/setpriv")),
                "needs setpriv (util-linux) to run a client as uid 65534");
        Path python = Path.of("/usr/bin/python3");
        Assumptions.assumeTrue(Files.isExecutable(python), "needs a system-wide python3 that uid 65534 may run");
        // uid 65534 must reach the socket: the temp dir is opened up below, but what lies above it is not ours
        for (Path p = dir.getParent(); p != null; p = p.getParent()) {
            Assumptions.assumeTrue(othersMayTraverse(p), p + " is not searchable by other uids (java.io.tmpdir)");
        }
        try (DaemonProcess d = DaemonProcess.start(dir)) {
            // the file mode is the first gate (0660 root:root); open it so that the policy is what decides.
            // Only the test's own directory and below: never a directory it did not create (/tmp itself)
            for (Path p = d.socket().getParent(); p.startsWith(dir); p = p.getParent()) {
                Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            Files.setPosixFilePermissions(d.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
            String py = String.join("\n",
                    "import socket, json, sys, os",
                    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rb')",
                    "json.loads(f.readline())",
                    "s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.list\"}\\n')",
                    "r = json.loads(f.readline())",
                    "print(os.getuid(), r['error']['code'] if 'error' in r else 'allowed', flush=True)");
            Process p = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    python.toString(), "-I", "-c", py, d.socket().toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertEquals("65534 -32003", out);
            try (VfioExportClient root = d.connect()) {
                assertEquals(2, root.request("device.list").getJsonArray("devices").size(), "root is allowed");
            }
        }
    }

    private static boolean othersMayTraverse(Path p) throws IOException {
        return Files.getPosixFilePermissions(p).contains(PosixFilePermission.OTHERS_EXECUTE);
    }

    @Test
    void unknownBackendAndMissingConfigAreClearErrors() throws Exception {
        DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("x.sock"), c -> c.put("backend", "fpga"));
        assertEquals(1, d.awaitExit(60_000));
        assertTrue(d.stderr().contains("unknown backend 'fpga'"), d.stderr());
    }
}

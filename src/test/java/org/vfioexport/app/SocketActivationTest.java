package org.vfioexport.app;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.SharedDirectoriesUnchanged;
import org.vfioexport.testutil.Wait;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * systemd socket activation with a real inherited socket: {@code systemd-socket-activate} (what systemd does for a
 * .socket unit) binds and listens, and execs the daemon with the socket as fd 3 and LISTEN_PID/LISTEN_FDS set.
 */
@ExtendWith(SharedDirectoriesUnchanged.class)
class SocketActivationTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void needsSystemdSocketActivate() {
        Assumptions.assumeTrue(onPath("systemd-socket-activate"), "systemd-socket-activate is not installed");
    }

    /**
     * Two daemons in turn on one socket, as systemd restarts a service: the launcher's shell runs the first daemon
     * as a child (LISTEN_PID set to that child's pid by the inner shell, which execs java), then execs the second.
     */
    @Test
    void servesTheInheritedSocketAndLeavesItToItsOwner() throws Exception {
        Path socket = dir.resolve("activated.sock");
        List<String> launcher = List.of("systemd-socket-activate", "-l", socket.toString(),
                "sh", "-c", "sh -c 'LISTEN_PID=$$ exec \"$@\"' x \"$@\"; exec \"$@\"", "x");
        DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("configured.sock"), c -> { }, launcher);
        try {
            Wait.until(socket + " created by systemd-socket-activate", 30_000, () -> Files.exists(socket));
            Object mode = Files.getAttribute(socket, "unix:mode", LinkOption.NOFOLLOW_LINKS);

            // the first connection starts the daemon (systemd-socket-activate execs on the first connection)
            assertEquals("hello", firstLine(socket).getString("method"));
            d.awaitLine("vfio-exportd: listening on " + socket + " (socket-activated)", 60_000);
            assertTrue(!Files.exists(dir.resolve("configured.sock")), "the configured socket is not bound");
            assertTrue(!Files.exists(SocketLock.lockPathOf(socket)), "no lock beside systemd's socket");

            ProcessHandle first = javaDescendant(d.process().toHandle());
            assertTrue(first.destroy(), "SIGTERM to the first daemon");
            first.onExit().get(30, TimeUnit.SECONDS);
            assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the socket survives the daemon's stop");
            assertEquals(mode, Files.getAttribute(socket, "unix:mode", LinkOption.NOFOLLOW_LINKS),
                    "the daemon does not chmod a socket it did not create");

            // the second daemon is activated on the same listening socket
            assertEquals("hello", firstLine(socket).getString("method"));
            d.awaitLine("vfio-exportd: listening on " + socket + " (socket-activated)", 60_000);
            assertNotEquals(first.pid(), javaDescendantOrSelf(d.process().toHandle()).pid());
            assertEquals(0, d.terminate(30_000), d.stderr());
            assertTrue(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the socket survives the second stop too");
        } finally {
            d.close();
        }
    }

    /** fd 3 is a regular file: refused with a message naming it, and a non-zero exit. */
    @Test
    void anInheritedFdThatIsNotAListeningUnixSocketIsRefused() throws Exception {
        Path notASocket = dir.resolve("plain-file");
        Files.writeString(notASocket, "x");
        List<String> launcher = List.of("sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\" 3<" + notASocket, "x");
        DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("configured.sock"), c -> { }, launcher);
        try {
            int rc = d.awaitExit(60_000);
            assertNotEquals(0, rc);
            assertTrue(d.stderr().contains("socket activation: fd 3 is not a listening Unix socket: ENOTSOCK (errno 88)"),
                    d.stderr());
            assertTrue(!Files.exists(dir.resolve("configured.sock")), "nothing bound instead");
        } finally {
            d.close();
        }
    }

    /** fd 3 is a Unix stream socket that does not listen: refused too. */
    @Test
    void anInheritedUnixSocketThatDoesNotListenIsRefused() throws Exception {
        Path socket = dir.resolve("activated.sock");
        // the launcher's child is the daemon's shell; fd 3 there is a connected socket, not the listening one
        List<String> launcher = List.of("systemd-socket-activate", "--inetd", "-a", "-l", socket.toString(),
                "sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\" 3<&0", "x");
        DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("configured.sock"), c -> { }, launcher);
        try {
            Wait.until(socket + " created by systemd-socket-activate", 30_000, () -> Files.exists(socket));
            try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
                Wait.until("the refusal on stderr", 60_000, () -> d.stderr().contains(
                        "socket activation: fd 3 is a Unix stream socket that is not listening"));
            }
        } finally {
            d.close();
        }
    }

    /** The first line the server sends on a new connection, within 60 s (the daemon starts on this connection). */
    private static JsonObject firstLine(Path socket) throws Exception {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            CompletableFuture<String> line = CompletableFuture.supplyAsync(() -> {
                ByteBuffer b = ByteBuffer.allocate(64 * 1024);
                StringBuilder got = new StringBuilder();
                try {
                    while (got.indexOf("\n") < 0) {
                        b.clear();
                        if (ch.read(b) < 0) throw new IOException("closed before a line: " + got);
                        got.append(new String(b.array(), 0, b.position(), StandardCharsets.UTF_8));
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return got.substring(0, got.indexOf("\n"));
            });
            try {
                return new JsonObject(line.get(60, TimeUnit.SECONDS));
            } catch (TimeoutException e) {
                throw new AssertionError("no line from the server on " + socket + " within 60 s");
            }
        }
    }

    /** The java process under {@code root} (the first daemon, a grandchild of the launcher). */
    private static ProcessHandle javaDescendant(ProcessHandle root) {
        List<ProcessHandle> found = new ArrayList<>();
        Wait.until("a java process under " + root.pid(), 30_000, () -> {
            found.clear();
            root.descendants().filter(SocketActivationTest::isJava).forEach(found::add);
            return found.size() == 1;
        });
        return found.get(0);
    }

    private static ProcessHandle javaDescendantOrSelf(ProcessHandle root) {
        return isJava(root) ? root : javaDescendant(root);
    }

    private static boolean isJava(ProcessHandle p) {
        return p.info().command().map(c -> c.endsWith("/java")).orElse(false);
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) return true;
        }
        return false;
    }
}

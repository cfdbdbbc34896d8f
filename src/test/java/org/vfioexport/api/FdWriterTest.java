package org.vfioexport.api;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.SocketAddress;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.testutil.Wait;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ordered fd writer on a real socket: lines with and without fds, pipelined far beyond the socket buffer to a
 * client that does not read at first, arrive in order, each fd with the first byte of its own line.
 */
class FdWriterTest {
    private static final String TAG = "fdwriter-test";

    @TempDir
    Path dir;
    Vertx vertx;
    Path socket;
    final CompletableFuture<FdWriter> writer = new CompletableFuture<>();
    final CompletableFuture<Void> closed = new CompletableFuture<>();

    @BeforeEach
    void listen() throws Exception {
        vertx = Vertx.vertx(new VertxOptions().setPreferNativeTransport(true));
        assertTrue(vertx.isNativeTransportEnabled(), "epoll");
        socket = dir.resolve("w.sock");
        NetServer server = vertx.createNetServer().connectHandler(so -> {
            so.closeHandler(v -> closed.complete(null));
            writer.complete(new FdWriter(vertx, so));
        });
        server.listen(SocketAddress.domainSocketAddress(socket.toString())).await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** Fds of this process that are memfds made by this test. */
    private static long taggedFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains(TAG);
                } catch (IOException e) {
                    return false;
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Queues {@code n} items on the writer's loop: line i is "f i" with a memfd of i+1 bytes when i is odd, "p i" else. */
    private void produce(FdWriter w, int n, CompletableFuture<Void> queued) {
        w.context().runOnContext(v -> {
            try {
                for (int i = 0; i < n; i++) {
                    Buffer line = Buffer.buffer((i % 2 == 1 ? "f " : "p ") + i + " " + "x".repeat(i % 200) + "\n");
                    if (i % 2 == 1) {
                        Fd fd = Fd.adopt(Posix.memfdCreate(TAG, Posix.MFD_CLOEXEC));
                        Posix.ftruncate(fd.intValue(), i + 1);
                        w.writeWithFds(line, new Fd[] {fd}, fd::close);
                    } else {
                        w.write(line);
                    }
                }
                queued.complete(null);
            } catch (Exception e) {
                queued.completeExceptionally(e);
            }
        });
    }

    @Test
    void pipelinedFdLinesToASlowReaderArriveInOrderEachOnItsFirstByte() throws Exception {
        int sock = Posix.connectUnix(socket.toString());
        try {
            FdWriter w = writer.get(10, TimeUnit.SECONDS);
            int n = 3000;
            CompletableFuture<Void> queued = new CompletableFuture<>();
            produce(w, n, queued);
            queued.get(30, TimeUnit.SECONDS); // all written while the client has read nothing: the buffers fill up
            // read one byte at a time: an fd must come with exactly the first byte of an "f" line
            byte[] one = new byte[1];
            StringBuilder line = new StringBuilder();
            int expected = 0;
            int pendingFd = -1;
            boolean atLineStart = true;
            while (expected < n) {
                assertTrue(Posix.poll(sock, Posix.POLLIN, 30_000) != 0, "line " + expected + " within 30 s");
                Posix.Received r = Posix.recvWithFds(sock, one, 4);
                assertEquals(1, r.length());
                if (r.fds().length > 0) {
                    assertTrue(atLineStart && one[0] == 'f', "fds only on the first byte of an fd line (line " + expected + ")");
                    assertEquals(1, r.fds().length);
                    pendingFd = r.fds()[0];
                }
                atLineStart = false;
                if (one[0] != '\n') {
                    line.append((char) one[0]);
                    continue;
                }
                String[] parts = line.toString().split(" ");
                assertEquals(String.valueOf(expected), parts[1], "lines in order");
                if (parts[0].equals("f")) {
                    assertTrue(pendingFd >= 0, "line " + expected + " came with its fd");
                    assertEquals(expected + 1, Posix.lseek(pendingFd, 0, Posix.SEEK_END), "the fd of line " + expected);
                    Posix.close(pendingFd);
                    pendingFd = -1;
                } else {
                    assertEquals(-1, pendingFd);
                }
                line.setLength(0);
                atLineStart = true;
                expected++;
            }
            CompletableFuture<long[]> counters = new CompletableFuture<>(); // read on the writer's own loop
            w.context().runOnContext(v -> counters.complete(new long[] {w.fdLinesSent(), w.waitsForNetty(), w.waitsForKernel()}));
            long[] c = counters.get(10, TimeUnit.SECONDS);
            assertEquals(n / 2, c[0]);
            assertTrue(c[1] > 0, "fd lines waited behind plain lines in Netty");
            assertTrue(c[2] > 0, "fd lines found the socket buffer full and were retried");
        } finally {
            Posix.close(sock);
        }
        Wait.untilEquals("the writer to close every sent fd", 10_000, 0L, FdWriterTest::taggedFds);
    }

    @Test
    void queuedFdsAreClosedWhenTheConnectionDies() throws Exception {
        int sock = Posix.connectUnix(socket.toString());
        FdWriter w = writer.get(10, TimeUnit.SECONDS);
        CompletableFuture<Void> queued = new CompletableFuture<>();
        produce(w, 4000, queued);
        queued.get(30, TimeUnit.SECONDS);
        assertTrue(taggedFds() > 0, "some fds still wait in the writer");
        Posix.close(sock); // the client goes away without reading
        closed.get(10, TimeUnit.SECONDS);
        w.context().runOnContext(v -> w.close()); // what the session does when its connection closes
        Wait.untilEquals("every queued fd closed", 10_000, 0L, FdWriterTest::taggedFds);
        assertTrue(w.isClosed());
    }

    @Test
    void plainLinesKeepTheirBytes() throws Exception {
        int sock = Posix.connectUnix(socket.toString());
        try {
            FdWriter w = writer.get(10, TimeUnit.SECONDS);
            w.context().runOnContext(v -> w.write(Buffer.buffer("héllo\n")));
            byte[] buf = new byte[64];
            assertTrue(Posix.poll(sock, Posix.POLLIN, 10_000) != 0);
            Posix.Received r = Posix.recvWithFds(sock, buf, 4);
            assertEquals("héllo\n", new String(buf, 0, r.length(), StandardCharsets.UTF_8));
            assertEquals(0, r.fds().length);
        } finally {
            Posix.close(sock);
        }
    }
}

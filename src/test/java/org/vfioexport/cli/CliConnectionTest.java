package org.vfioexport.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.testutil.Wait;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** -t and -r, as rpc.py has them: against a socket that greets and then never answers, and one that appears late. */
@Timeout(60)
class CliConnectionTest {
    @TempDir
    Path dir;

    /** Greets like the daemon, then reads and never answers: a daemon that hangs. */
    private static Thread mute(ServerSocketChannel server) {
        Thread t = new Thread(() -> {
            try (SocketChannel c = server.accept()) {
                c.write(ByteBuffer.wrap("{\"jsonrpc\":\"2.0\",\"method\":\"hello\",\"params\":{\"protocol\":1}}\n"
                        .getBytes(StandardCharsets.UTF_8)));
                ByteBuffer b = ByteBuffer.allocate(4096);
                while (c.read(b.clear()) > 0) {
                    // read, never answer
                }
            } catch (IOException closed) {
                // the test is over
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }

    @Test
    void timeoutBoundsTheWaitForAnAnswer() throws Exception {
        Path sock = dir.resolve("mute.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            mute(server);
            long start = System.nanoTime();
            CliTest.Run r = CliTest.inProcessRaw("--socket", sock.toString(), "-t", "0.3", "methods");
            long ms = (System.nanoTime() - start) / 1_000_000;
            assertEquals(Exit.NO_DAEMON, r.exit());
            assertTrue(r.err().startsWith("vfio-export: error: no answer from the daemon in time ("), r.err());
            assertTrue(r.err().endsWith("; -t sets the timeout)\n"), r.err());
            assertTrue(ms >= 300 && ms < 20_000, ms + " ms");
        }
        CliTest.Run bad = CliTest.inProcessRaw("--socket", sock.toString(), "--timeout", "0", "methods");
        assertEquals(Exit.USAGE, bad.exit());
        assertEquals("vfio-export: error: --timeout must be positive, not 0.0\n", bad.err());
    }

    @Test
    void retriesWaitForTheSocketToAppear() throws Exception {
        Path sock = dir.resolve("late.sock");
        CliTest.Run without = CliTest.inProcessRaw("--socket", sock.toString(), "methods");
        assertEquals(Exit.NO_DAEMON, without.exit());

        AtomicReference<CliTest.Run> result = new AtomicReference<>();
        Thread cli = new Thread(() -> result.set(CliTest.inProcessRaw("--socket", sock.toString(), "-r", "100",
                "--json", "call", "rpc.methods")));
        cli.start();
        // between two attempts the CLI sleeps: then it has failed at least once, and the socket may appear
        Wait.until("the CLI to fail a first attempt", 20_000, () -> cli.getState() == Thread.State.TIMED_WAITING);
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(sock));
            Thread answer = new Thread(() -> {
                try (SocketChannel c = server.accept()) {
                    c.write(ByteBuffer.wrap(("{\"jsonrpc\":\"2.0\",\"method\":\"hello\",\"params\":{\"protocol\":1}}\n"
                            + "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"methods\":[\"rpc.methods\"]}}\n")
                            .getBytes(StandardCharsets.UTF_8)));
                    c.read(ByteBuffer.allocate(4096));
                } catch (IOException closed) {
                    // the test is over
                }
            });
            answer.setDaemon(true);
            answer.start();
            cli.join(20_000);
        }
        CliTest.Run r = result.get();
        assertEquals(new CliTest.Run(0, "{\"methods\":[\"rpc.methods\"]}\n", ""), r);
    }
}

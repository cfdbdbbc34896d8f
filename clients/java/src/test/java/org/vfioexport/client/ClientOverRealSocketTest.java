package org.vfioexport.client;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.vfioexport.ffm.posix.Fd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The client library alone (no daemon, nothing but the JDK) against {@link TinyServer} on a real Unix socket: the
 * greeting, results and errors as plain maps, an fd that arrives with its line, events, the server going away.
 */
class ClientOverRealSocketTest {
    static final String HELLO = "{\"jsonrpc\":\"2.0\",\"method\":\"hello\",\"params\":{\"version\":\"0.1.0\",\"capabilities\":[\"fds\"]}}";

    @TempDir
    Path dir;

    @Test
    void requestsExportsAndEventsWithARealFd() throws Throwable {
        Path sock = dir.resolve("s.sock");
        Fd served = TinyServer.memfd("bar bytes");
        try (TinyServer server = new TinyServer(sock, HELLO, req -> {
            Object id = req.get("id");
            return switch ((String) req.get("method")) {
                case "device.list" -> TinyServer.one("{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"result\":{\"devices\":[{\"id\":\"0000:01:00.0\"}]}}");
                case "export.create" -> List.of(new TinyServer.Reply("{\"jsonrpc\":\"2.0\",\"id\":" + id
                        + ",\"result\":{\"export_id\":\"e1\",\"size\":4096,\"fd_index\":0}}", new Fd[] {served}),
                        TinyServer.Reply.of("{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"type\":\"revoked\",\"export_id\":\"e1\"}}"));
                case "bye" -> null;
                default -> TinyServer.one("{\"jsonrpc\":\"2.0\",\"id\":" + id
                        + ",\"error\":{\"code\":-32601,\"message\":\"no such method\",\"data\":{\"method\":\"" + req.get("method") + "\"}}}");
            };
        }); VfioExportClient c = VfioExportClient.connect(sock)) {
            assertEquals("0.1.0", c.hello().get("version"));
            assertEquals(List.of("fds"), c.hello().get("capabilities"));
            assertTrue(c.passesFds());

            Map<String, Object> devices = c.request("device.list");
            assertEquals("0000:01:00.0", ((Map<?, ?>) ((List<?>) devices.get("devices")).get(0)).get("id"));

            RpcError e = assertThrows(RpcError.class, () -> c.request("nope", Map.of("x", 1)));
            assertEquals(-32601, e.code());
            assertEquals("no such method", e.getMessage());
            assertEquals("nope", e.data().get("method"));

            ExportedBuffer b = c.export("0000:01:00.0", 2, 0, 4096);
            try {
                assertEquals("e1", b.id());
                assertEquals(4096, b.size());
                // the fd that arrived is the server's memfd: same content, through this process's own fd
                assertArrayEquals("bar bytes".getBytes(StandardCharsets.UTF_8), Files.readAllBytes(Path.of("/proc/self/fd/" + b.fd().intValue())));
            } finally {
                b.close();
            }
            assertEquals(0, c.unclaimedFds());
            Map<String, Object> event = c.nextEvent(10_000);
            assertEquals("revoked", event.get("type"));

            c.notify("bye", null);
            assertTrue(c.awaitClosed(10_000), "the server's close is seen");
            server.finish(10_000);
            assertEquals("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"export.create\",\"params\":{\"device\":\"0000:01:00.0\","
                    + "\"region\":2,\"offset\":0,\"length\":4096}}", server.received.get(2));
        } finally {
            served.close();
        }
    }

    @Test
    void withoutFdPassingTheJdksChannelIsUsed() throws Throwable {
        Path sock = dir.resolve("s.sock");
        try (TinyServer server = new TinyServer(sock, HELLO, req -> TinyServer.one(
                "{\"jsonrpc\":\"2.0\",\"id\":" + req.get("id") + ",\"result\":{\"echo\":" + JsonText.encode(req.get("params")) + "}}"));
             VfioExportClient c = VfioExportClient.connectWithoutFds(sock)) {
            assertNull(c.socket());
            Map<String, Object> r = c.request("echo", Map.of("a", List.of(1, "two", Map.of())));
            assertEquals(Map.of("echo", Map.of("a", List.of(1, "two", Map.of()))), r);
        }
    }

    @Test
    void aSocketNobodyListensOnIsAConnectFailureWithItsErrno() throws Exception {
        ConnectFailedException e = assertThrows(ConnectFailedException.class,
                () -> VfioExportClient.connect(dir.resolve("absent.sock")));
        assertEquals(2, e.errno());
        assertTrue(e.getMessage().contains("ENOENT (errno 2)"), e.getMessage());
    }

    @Test
    void aServerThatAnswersNothingIsATimeout() throws Throwable {
        Path sock = dir.resolve("s.sock");
        try (TinyServer server = new TinyServer(sock, HELLO, req -> List.of());
             VfioExportClient c = VfioExportClient.connect(sock, true, 300)) {
            assertThrows(TimeoutIOException.class, () -> c.request("device.list"));
        }
    }
}

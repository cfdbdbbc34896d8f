package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.JsonText;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The workload the build trains the CLI's AOT cache on ({@code target/vfio-export-cli.aot}, which
 * {@code bin/vfio-export} passes to the JVM): help screens, a usage error, a refused connection, and the usual
 * commands against a stand-in that answers on a socket of its own as the daemon would, so that the classes of a
 * real call are loaded and linked in the cache. The JVM writes the cache when this exits. Run by the build only.
 */
final class AotTraining {
    private AotTraining() {}

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("vfio-export-aot");
        Path sock = dir.resolve("training.sock");
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        int failures = 0;
        try (StandIn server = StandIn.start(sock)) {
            for (String[] a : List.of(new String[]{"--help"}, new String[]{"help", "export"},
                    new String[]{"devices", "--help"}, new String[]{"devices", "--bogus"},
                    new String[]{"--socket", dir.resolve("absent.sock").toString(), "devices"})) {
                Cli.run(quiet, quiet, a);
            }
            for (String[] a : List.of(new String[]{"methods"}, new String[]{"devices"}, new String[]{"--json", "devices"},
                    new String[]{"device", "01:00.0"}, new String[]{"reset", "01:00.0"},
                    new String[]{"memory", "01:00.0", "on"}, new String[]{"call", "server.info"},
                    new String[]{"call", "device.get", "{\"device\":\"0000:09:00.0\"}"})) {
                List<String> full = new ArrayList<>(List.of("--socket", sock.toString()));
                full.addAll(List.of(a));
                int rc = Cli.run(quiet, quiet, full.toArray(String[]::new));
                if (rc != Exit.OK && !a[a.length - 1].contains("09:00.0")) failures++;
            }
        } finally {
            Files.deleteIfExists(sock);
            Files.deleteIfExists(dir);
        }
        // a command that no longer runs against the stand-in trains less, but the cache is still valid
        if (failures > 0) System.err.println("AotTraining: " + failures + " training calls failed; the cache covers less");
    }

    /** Answers the CLI's calls with one simulated device, one connection at a time, on its own thread. */
    private static final class StandIn implements AutoCloseable {
        private static final JsonObject DEVICE = new JsonObject().put("device", "0000:01:00.0")
                .put("name", "training device").put("backend", "sim").put("state", "ready").put("memory_enabled", true)
                .put("seq", 0).put("exports", 0).put("reset_supported", true).put("dmabuf_supported", true)
                .put("regions", new JsonArray().add(new JsonObject().put("index", 0).put("name", "BAR0")
                        .put("size", 16384).put("kind", "mmio").put("mmap", true).put("prefetchable", false)
                        .put("address", 0xfeb10000L)));

        private final ServerSocketChannel server;
        private final Thread thread;

        private StandIn(ServerSocketChannel server) {
            this.server = server;
            this.thread = new Thread(this::serve, "aot-training-stand-in");
            thread.setDaemon(true);
            thread.start();
        }

        static StandIn start(Path sock) throws IOException {
            ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            s.bind(UnixDomainSocketAddress.of(sock));
            return new StandIn(s);
        }

        private void serve() {
            while (true) {
                try (SocketChannel c = server.accept()) {
                    converse(c);
                } catch (IOException closed) {
                    if (!server.isOpen()) return;
                }
            }
        }

        private static void converse(SocketChannel c) throws IOException {
            write(c, new JsonObject().put("jsonrpc", "2.0").put("method", "hello").put("params",
                    new JsonObject().put("protocol", 1).put("server", "vfio-exportd").put("version", "0.1.0")));
            StringBuilder line = new StringBuilder();
            ByteBuffer in = ByteBuffer.allocate(65536);
            while (c.read(in.clear()) > 0) {
                line.append(new String(in.array(), 0, in.position(), StandardCharsets.UTF_8));
                for (int nl; (nl = line.indexOf("\n")) >= 0; line.delete(0, nl + 1)) {
                    JsonObject req = JsonText.parseObject(line.substring(0, nl));
                    write(c, answer(req));
                }
            }
        }

        private static JsonObject answer(JsonObject req) {
            JsonObject r = new JsonObject().put("jsonrpc", "2.0").put("id", req.getValue("id"));
            JsonObject params = req.getJsonObject("params", new JsonObject());
            String device = params.getString("device", "0000:01:00.0");
            if (!device.equals("0000:01:00.0")) {
                return r.put("error", new JsonObject().put("code", -32001).put("message", "no such device: " + device)
                        .put("data", new JsonObject().put("device", device)));
            }
            return r.put("result", switch (req.getString("method")) {
                case "rpc.methods" -> new JsonObject().put("methods", new JsonArray(CallCommand.KnownMethods.ALL));
                case "device.list" -> new JsonObject().put("devices", new JsonArray().add(DEVICE));
                case "device.get" -> DEVICE;
                case "device.reset" -> new JsonObject().put("device", device).put("revoked", 0).put("restored", 0)
                        .put("duration_us", 1);
                case "device.set_memory" -> new JsonObject().put("device", device).put("memory_enabled", true)
                        .put("revoked", 0).put("restored", 0);
                default -> new JsonObject().put("version", "0.1.0").put("backend", "sim");
            });
        }

        private static void write(SocketChannel c, JsonObject o) throws IOException {
            ByteBuffer b = ByteBuffer.wrap((JsonText.encode(o) + "\n").getBytes(StandardCharsets.UTF_8));
            while (b.hasRemaining()) c.write(b);
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.Message;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.testutil.TestDaemon;
import org.vfioexport.testutil.Wait;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** Every method and every error of the protocol, against an in-process daemon over its real socket. */
class ProtocolTest {
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

    private static JsonObject exportParams(String device, long region, long offset, long length) {
        return new JsonObject().put("device", device).put("region", region).put("offset", offset).put("length", length);
    }

    private static RpcError error(VfioExportClient c, String method, JsonObject params) {
        return assertThrows(RpcError.class, () -> c.request(method, params), method + " " + params + " must fail");
    }

    @Test
    void greetingComesFirstAndDescribesTheServer() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonObject h = c.hello();
            assertEquals("vfio-export", h.getString("server"));
            assertEquals("0.1.0", h.getString("version"));
            assertEquals(1, h.getInteger("protocol"));
            assertEquals("sim", h.getString("backend"));
            assertEquals(ProcessHandle.current().pid(), h.getLong("pid"));
            assertEquals(new JsonArray().add("fd-passing").add("events").add("replay").add("batch"), h.getJsonArray("capabilities"));
        }
    }

    @Test
    void rpcMethodsListsEveryMethod() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            assertEquals(List.of("rpc.methods", "server.info", "server.metrics", "device.list", "device.get", "device.reset",
                            "device.set_memory", "export.create", "export.release", "export.get", "export.list",
                            "export.watch", "export.quiesced",
                            "events.subscribe", "events.unsubscribe", "audit.query", "importer.attach", "importer.map",
                            "importer.unmap", "importer.get", "importer.detach"),
                    c.request("rpc.methods").getJsonArray("methods").getList());
        }
    }

    @Test
    void serverInfoCountsDevicesAndExports() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonObject i = c.request("server.info");
            assertEquals("0.1.0", i.getString("version"));
            assertEquals("sim", i.getString("backend"));
            assertEquals(ProcessHandle.current().pid(), i.getLong("pid"));
            assertEquals(2, i.getInteger("devices"));
            assertTrue(i.getLong("uptime_ms") >= 0);
            int before = i.getInteger("exports");
            ExportedBuffer b = c.export(NVME, 2, 0, 4096);
            assertEquals(before + 1, c.request("server.info").getInteger("exports"));
            c.request("export.release", new JsonObject().put("export_id", b.id()));
            b.fd().close();
            assertTrue(c.request("server.info").containsKey("subscribers"));
        }
    }

    @Test
    void deviceListAndGetDescribeDevicesAndRegions() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonArray list = c.request("device.list").getJsonArray("devices");
            assertEquals(2, list.size());
            assertEquals(NVME, list.getJsonObject(0).getString("device"));
            assertEquals(GPU, list.getJsonObject(1).getString("device"));
            JsonObject d = c.request("device.get", new JsonObject().put("device", GPU));
            for (String k : List.of("device", "name", "backend", "state", "memory_enabled", "seq", "exports", "regions")) {
                assertTrue(d.containsKey(k), "DEVICE has " + k);
            }
            assertEquals("sim", d.getString("backend"));
            JsonObject bar2 = d.getJsonArray("regions").getJsonObject(2);
            assertEquals(2, bar2.getInteger("index"));
            assertEquals("BAR2", bar2.getString("name"));
            assertEquals(268435456L, bar2.getLong("size"));
            assertEquals("mmio", bar2.getString("kind"));
            assertTrue(bar2.getBoolean("prefetchable"));
            // placed as firmware would: the largest prefetchable BAR first in the 64-bit window at 2^39
            assertEquals(1L << 39, bar2.getLong("address"));
            assertEquals(0, d.getJsonArray("regions").getJsonObject(7).getLong("address"), "config space has none");
            assertEquals("io", d.getJsonArray("regions").getJsonObject(5).getString("kind"));
            assertTrue(d.getBoolean("dmabuf_supported"), "the PROBE at open succeeded");
            assertFalse(d.containsKey("dmabuf_unsupported_reason"));
        }
    }

    @Test
    void unknownDeviceIsMinus32001() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            RpcError e = error(c, "device.get", new JsonObject().put("device", "0000:09:00.0"));
            assertEquals(-32001, e.code());
            assertEquals("no such device: 0000:09:00.0", e.getMessage());
            assertEquals("0000:09:00.0", e.data().getString("device"));
            assertEquals(-32001, error(c, "export.create", exportParams("0000:09:00.0", 0, 0, 4096)).code());
        }
    }

    @Test
    void exportCarriesItsFdOfExactSizeAndReleaseClosesTheServersReference() throws Exception {
        long base = TestDaemon.dmabufFds();
        try (VfioExportClient c = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 2, 0x2000, 0x3000);
            JsonObject e = b.export();
            assertEquals(NVME, e.getString("device"));
            assertEquals(2, e.getInteger("region"));
            assertEquals(new JsonArray().add(new JsonObject().put("offset", 0x2000).put("length", 0x3000)), e.getJsonArray("ranges"));
            assertEquals(0x3000, e.getLong("size"));
            assertEquals("live", e.getString("state"));
            assertEquals(0, e.getInteger("fd_index"));
            assertTrue(e.getLong("created_seq") >= 1);
            assertEquals(0x3000, b.fd().size(), "the fd's size is the export's");
            // the client's copy, the service's own reference (and whatever the simulated kernel keeps)
            long refs = TestDaemon.fdsOnSameFile(b.fd().intValue());
            assertTrue(refs >= 2, "the service holds its own reference: " + refs);

            JsonObject got = c.request("export.get", new JsonObject().put("export_id", b.id()));
            assertEquals(b.id(), got.getString("export_id"));
            assertFalse(got.containsKey("fd_index"));
            JsonArray mine = c.request("export.list").getJsonArray("exports");
            assertEquals(1, mine.size());
            assertEquals(1, c.request("export.list", new JsonObject().put("device", NVME)).getJsonArray("exports").size());
            assertEquals(0, c.request("export.list", new JsonObject().put("device", GPU)).getJsonArray("exports").size());

            JsonObject r = c.request("export.release", new JsonObject().put("export_id", b.id()));
            assertEquals(new JsonObject().put("export_id", b.id()).put("released", true), r);
            // only the client's copy is left: the service (and the kernel model behind it) closed theirs
            Wait.untilEquals("the service to close its reference", 5000, 1L, () -> TestDaemon.fdsOnSameFile(b.fd().intValue()));
            RpcError gone = error(c, "export.get", new JsonObject().put("export_id", b.id()));
            assertEquals(-32002, gone.code());
            assertEquals(b.id(), gone.data().getString("export_id"));
            assertEquals(-32002, error(c, "export.release", new JsonObject().put("export_id", b.id())).code());
            b.fd().close();
        }
        Wait.untilEquals("no dma-buf fd left behind", 5000, base, TestDaemon::dmabufFds);
    }

    @Test
    void theFdComesWithTheFirstByteOfItsResponseLine() throws Exception {
        int sock = Posix.connectUnix(daemon.socket().toString());
        try {
            byte[] req = ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"}\n"
                    + "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"export.create\",\"params\":"
                    + exportParams(NVME, 2, 0, 4096).encode() + "}\n").getBytes(StandardCharsets.UTF_8);
            Posix.sendWithFds(sock, req, 0, req.length, new int[0], 0);
            // hello, the server.info response, the export response: read one byte at a time
            byte[] one = new byte[1];
            int line = 0, fdLine = -1, fdByte = -1, pos = 0, fd = -1;
            while (line < 3) {
                assertTrue(Posix.poll(sock, Posix.POLLIN, 20_000) != 0, "a byte within 20 s");
                Posix.Received r = Posix.recvWithFds(sock, one, 4);
                assertEquals(1, r.length());
                if (r.fds().length > 0) {
                    assertEquals(-1, fd, "one fd only");
                    fd = r.fds()[0];
                    fdLine = line;
                    fdByte = pos;
                }
                pos++;
                if (one[0] == '\n') {
                    line++;
                    pos = 0;
                }
            }
            assertEquals(2, fdLine, "the fd rides on the export's response line");
            assertEquals(0, fdByte, "on its first byte");
            assertEquals(4096, Posix.lseek(fd, 0, Posix.SEEK_END));
            Posix.close(fd);
        } finally {
            Posix.close(sock);
        }
    }

    @Test
    void exportsBelongToTheirConnection() throws Exception {
        try (VfioExportClient a = daemon.connect(); VfioExportClient b = daemon.connect()) {
            ExportedBuffer x = a.export(NVME, 0, 0, 4096);
            RpcError e = error(b, "export.release", new JsonObject().put("export_id", x.id()));
            assertEquals(-32002, e.code());
            assertEquals("no such export: " + x.id(), e.getMessage());
            assertEquals(0, b.request("export.list").getJsonArray("exports").size());
            a.request("export.release", new JsonObject().put("export_id", x.id()));
            x.fd().close();
        }
    }

    @Test
    void severalRangesConcatenate() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonArray ranges = new JsonArray().add(new JsonObject().put("offset", 0).put("length", 4096))
                    .add(new JsonObject().put("offset", 0x10000).put("length", 8192));
            ExportedBuffer b = c.export(new JsonObject().put("device", GPU).put("region", 2).put("ranges", ranges)
                    .put("open_flags", new JsonArray().add("rdwr").add("cloexec")));
            assertEquals(12288, b.size());
            assertEquals(12288, b.fd().size());
            b.fd().close();
        }
    }

    @Test
    void batchCarriesAllFdsOnOneLineInArrayOrder() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonArray batch = new JsonArray();
            long[] sizes = {4096, 8192, 12288};
            for (int i = 0; i < 3; i++) {
                batch.add(new JsonObject().put("jsonrpc", "2.0").put("id", "e" + i).put("method", "export.create")
                        .put("params", exportParams(i == 1 ? GPU : NVME, 2, 0, sizes[i])));
                if (i == 0) batch.add(new JsonObject().put("jsonrpc", "2.0").put("id", "info").put("method", "server.info"));
            }
            batch.add(new JsonObject().put("jsonrpc", "2.0").put("method", "server.info")); // notification: no entry
            batch.add(new JsonObject().put("jsonrpc", "2.0").put("id", "bad").put("method", "nope"));
            Message m = c.batch(batch);
            JsonArray rs = m.array();
            assertEquals(5, rs.size());
            assertEquals(3, m.fds().length, "one fd per export, all on the batch's line");
            int fdIndex = 0;
            for (int i = 0; i < rs.size(); i++) {
                JsonObject r = rs.getJsonObject(i);
                if (!String.valueOf(r.getValue("id")).startsWith("e")) continue;
                JsonObject res = r.getJsonObject("result");
                assertEquals(fdIndex, res.getInteger("fd_index"));
                assertEquals(res.getLong("size"), m.fds()[fdIndex].size(),
                        "fd " + fdIndex + " is the export of " + r.getValue("id"));
                fdIndex++;
            }
            assertEquals(-32601, rs.getJsonObject(4).getJsonObject("error").getInteger("code"));
            for (Fd fd : m.fds()) fd.close();
            assertEquals(0, c.unclaimedFds());
        }
    }

    @Test
    void emptyBatchIsInvalidAndAllNotificationBatchIsSilent() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendLine("[]");
            JsonObject r = c.read(10_000).object();
            assertNull(r.getValue("id"));
            assertEquals(-32600, r.getJsonObject("error").getInteger("code"));
            c.sendLine("[{\"jsonrpc\":\"2.0\",\"method\":\"server.info\"}]");
            // the next line must be the answer to the next request: the notification batch produced none
            assertEquals(List.of("rpc.methods"), c.request("rpc.methods").getJsonArray("methods").getList().subList(0, 1));
        }
    }

    @Test
    void kernelErrorsComeBackUnchangedWithReadableMessages() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            RpcError empty = error(c, "export.create", new JsonObject().put("device", NVME).put("region", 2)
                    .put("ranges", new JsonArray()));
            assertEquals(-32000, empty.code());
            assertEquals(new JsonObject().put("errno", 22).put("name", "EINVAL").put("op", "VFIO_DEVICE_FEATURE_DMA_BUF"), empty.data());

            // offset 2^64-4096: only a full-width u64 reaching the kernel makes this overflow
            BigInteger high = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.valueOf(4096));
            RpcError over = error(c, "export.create", new JsonObject().put("device", NVME).put("region", 2)
                    .put("offset", high).put("length", 8192));
            assertEquals(-32000, over.code());
            assertEquals("EOVERFLOW", over.data().getString("name"));
            assertEquals(75, over.data().getInteger("errno"));

            RpcError past = error(c, "export.create", exportParams(NVME, 0, 0, 0x5000));
            assertEquals(-32000, past.code());
            assertEquals("EINVAL", past.data().getString("name"));
            assertTrue(past.getMessage().startsWith("range 0x0+0x5000 exceeds region 0 (size 0x4000)"), past.getMessage());

            RpcError notBar = error(c, "export.create", exportParams(NVME, 7, 0, 4096));
            assertEquals("ENODEV", notBar.data().getString("name"));
            assertTrue(notBar.getMessage().startsWith("region 7 is not a BAR"), notBar.getMessage());

            RpcError unaligned = error(c, "export.create", exportParams(NVME, 2, 100, 4096));
            assertEquals("EINVAL", unaligned.data().getString("name"));
            assertTrue(unaligned.getMessage().contains("not page-aligned"), unaligned.getMessage());

            RpcError io = error(c, "export.create", exportParams(GPU, 5, 0, 4096));
            assertEquals("EINVAL", io.data().getString("name"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown field            | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":0,\"length\":4096,\"colour\":1} | colour",
            "device not a string      | {\"device\":1,\"region\":2,\"offset\":0,\"length\":4096}                          | device",
            "missing device           | {\"region\":2,\"offset\":0,\"length\":4096}                                       | device",
            "negative offset          | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":-4096,\"length\":4096}      | offset",
            "fractional length        | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":0,\"length\":4096.5}        | length",
            "float length             | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":0,\"length\":1e3}           | length",
            "offset above 2^64-1      | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":18446744073709551616,\"length\":4096} | offset",
            "region above 2^32-1      | {\"device\":\"0000:01:00.0\",\"region\":4294967296,\"offset\":0,\"length\":4096} | region",
            "length as string         | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":0,\"length\":\"4096\"}      | length",
            "ranges and offset        | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":0,\"ranges\":[]}            | offset",
            "range element unknown    | {\"device\":\"0000:01:00.0\",\"region\":2,\"ranges\":[{\"offset\":0,\"length\":4096,\"x\":0}]} | ranges[0].x",
            "range element negative   | {\"device\":\"0000:01:00.0\",\"region\":2,\"ranges\":[{\"offset\":0,\"length\":4096},{\"offset\":-1,\"length\":4096}]} | ranges[1].offset",
            "range not an object      | {\"device\":\"0000:01:00.0\",\"region\":2,\"ranges\":[5]}                        | ranges[0]",
            "no ranges at all         | {\"device\":\"0000:01:00.0\",\"region\":2}                                         | ranges",
            "unknown open flag        | {\"device\":\"0000:01:00.0\",\"region\":2,\"offset\":0,\"length\":4096,\"open_flags\":[\"append\"]} | open_flags[0]",
    })
    void shapeErrorsAreMinus32602NamingTheField(String name, String params, String field) throws Exception {
        long before = daemon.daemon().service().devices().liveExports();
        try (VfioExportClient c = daemon.connect()) {
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"export.create\",\"params\":" + params + "}");
            JsonObject r = c.read(10_000).object();
            JsonObject e = r.getJsonObject("error");
            assertEquals(-32602, e.getInteger("code"), name + ": " + r);
            assertEquals(field, e.getJsonObject("data").getString("field"), name);
            assertTrue(e.getString("message").length() > 10, "a readable message: " + e.getString("message"));
        }
        assertEquals(before, daemon.daemon().service().devices().liveExports(), "no side effect");
    }

    @Test
    void paramsThatAreNotAnObjectAndMethodsWithoutParams() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.get\",\"params\":[\"0000:01:00.0\"]}");
            JsonObject e = c.read(10_000).object().getJsonObject("error");
            assertEquals(-32602, e.getInteger("code"));
            assertEquals("params", e.getJsonObject("data").getString("field"));
            RpcError extra = error(c, "server.info", new JsonObject().put("verbose", true));
            assertEquals(-32602, extra.code());
            assertEquals("verbose", extra.data().getString("field"));
            RpcError bool = error(c, "device.set_memory", new JsonObject().put("device", NVME).put("enabled", "yes"));
            assertEquals("enabled", bool.data().getString("field"));
            RpcError since = error(c, "events.subscribe", new JsonObject().put("since", new JsonObject().put(NVME, -1)));
            assertEquals("since[\"" + NVME + "\"]", since.data().getString("field"));
            RpcError sub = error(c, "events.unsubscribe", new JsonObject().put("subscription", "sub-none"));
            assertEquals(-32602, sub.code());
        }
    }

    @Test
    void parseErrorKeepsTheConnectionUsable() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendLine("{not json");
            JsonObject r = c.read(10_000).object();
            assertTrue(r.containsKey("id") && r.getValue("id") == null, "id is null: " + r);
            assertEquals(-32700, r.getJsonObject("error").getInteger("code"));
            assertTrue(r.getJsonObject("error").getString("message").startsWith("parse error"));
            assertEquals(2, c.request("device.list").getJsonArray("devices").size());
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "not an object      | 42",
            "no jsonrpc         | {\"id\":1,\"method\":\"server.info\"}",
            "wrong version      | {\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"server.info\"}",
            "method not string  | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",
            "id an object       | {\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"server.info\"}",
            "id fractional      | {\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"server.info\"}",
            "unknown member     | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",\"extra\":1}",
    })
    void invalidRequestsAreMinus32600(String name, String line) throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendLine(line);
            JsonObject r = c.read(10_000).object();
            assertEquals(-32600, r.getJsonObject("error").getInteger("code"), name + ": " + r);
            assertEquals(1, c.request("rpc.methods").size(), "still usable");
        }
    }

    @Test
    void unknownMethodIsMinus32601() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            RpcError e = error(c, "device.explode", null);
            assertEquals(-32601, e.code());
            assertEquals("device.explode", e.data().getString("method"));
            assertTrue(e.getMessage().startsWith("method not found: device.explode"));
        }
    }

    @Test
    void crlfBlankLinesAndStringIdsAreAccepted() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendRaw("\n   \r\n{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"rpc.methods\"}\r\n".getBytes(StandardCharsets.UTF_8));
            JsonObject r = c.read(10_000).object();
            assertEquals("abc", r.getString("id"));
            assertTrue(r.containsKey("result"));
        }
    }

    @Test
    void notificationsGetNoResponse() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.notify("server.info", null);
            c.notify("no.such.method", null);
            c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"rpc.methods\"}");
            assertEquals(99, c.read(10_000).object().getInteger("id"), "the first line back answers the request");
        }
    }

    @Test
    void overlongLineIsMinus32600AndClosesTheConnection() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            byte[] big = new byte[70_000];
            java.util.Arrays.fill(big, (byte) ' ');
            big[big.length - 1] = '\n';
            c.sendRaw(big);
            JsonObject r = c.read(10_000).object();
            assertNull(r.getValue("id"));
            assertEquals(-32600, r.getJsonObject("error").getInteger("code"));
            assertTrue(r.getJsonObject("error").getString("message").contains("65536"));
            assertTrue(c.awaitClosed(10_000), "the server closes the connection");
        }
    }

    @Test
    void pipelinedRequestsForOneDeviceAnswerInOrder() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            List<Object> ids = new ArrayList<>();
            for (int i = 0; i < 60; i++) {
                ids.add(switch (i % 3) {
                    case 0 -> c.send("export.create", exportParams(NVME, 2, 0, 4096));
                    case 1 -> c.send("device.get", new JsonObject().put("device", NVME));
                    default -> c.send("export.create", exportParams(NVME, 9, 0, 4096)); // fails in the kernel
                });
            }
            List<Fd> fds = new ArrayList<>();
            for (Object id : ids) {
                Message m = c.read(10_000);
                assertEquals(id, m.object().getLong("id"), "responses in request order");
                for (Fd fd : m.fds()) fds.add(fd);
            }
            assertEquals(20, fds.size());
            for (Fd fd : fds) {
                assertEquals(4096, fd.size());
                fd.close();
            }
        }
    }

    @Test
    void resetAndMemoryReportWhatTheyDid() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            ExportedBuffer b = c.export(NVME, 0, 0, 4096);
            JsonObject r = c.request("device.reset", new JsonObject().put("device", NVME));
            assertEquals(NVME, r.getString("device"));
            assertEquals(1, r.getInteger("revoked"));
            assertEquals(1, r.getInteger("restored"));
            assertTrue(r.getLong("duration_us") >= 0);
            JsonObject off = c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false));
            assertEquals(new JsonObject().put("device", NVME).put("memory_enabled", false).put("revoked", 1).put("restored", 0)
                    .put("acked", 0).put("timed_out", 0).put("quiesce_us", 0), off);
            assertEquals("revoked", c.request("export.get", new JsonObject().put("export_id", b.id())).getString("state"));
            assertEquals("memory-disabled", c.request("device.get", new JsonObject().put("device", NVME)).getString("state"));
            JsonObject on = c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));
            assertEquals(1, on.getInteger("restored"));
            assertEquals("live", c.request("export.get", new JsonObject().put("export_id", b.id())).getString("state"));
            c.request("export.release", new JsonObject().put("export_id", b.id()));
            b.fd().close();
        }
    }

    @Test
    void secondResetWhileOneRunsIsBusy() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            daemon.kernel().faults().delayNth("reset.ioctl", 1, 1_000_000_000L);
            Object first = c.send("device.reset", new JsonObject().put("device", NVME));
            Object second = c.send("device.reset", new JsonObject().put("device", NVME));
            JsonObject busy = c.await(second).object().getJsonObject("error");
            assertEquals(-32004, busy.getInteger("code"));
            assertEquals(NVME, busy.getJsonObject("data").getString("device"));
            assertTrue(c.await(first).object().containsKey("result"));
        } finally {
            daemon.kernel().faults().clear();
        }
    }

    @Test
    void sessionEndReleasesExportsAndClosesTheServersFds() throws Exception {
        long base = TestDaemon.dmabufFds();
        int live = daemon.daemon().service().devices().liveExports();
        List<Fd> mine = new ArrayList<>();
        try (VfioExportClient c = daemon.connect()) {
            for (int i = 0; i < 5; i++) mine.add(c.export(GPU, 2, 0, 4096).fd());
            assertEquals(live + 5, daemon.daemon().service().devices().liveExports());
        }
        Wait.untilEquals("exports of a closed connection to be released", 10_000, live,
                () -> daemon.daemon().service().devices().liveExports());
        for (Fd fd : mine) fd.close();
        Wait.untilEquals("the service's references to be closed", 10_000, base, TestDaemon::dmabufFds);
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.TestDaemon;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * Strict input over the real socket: bytes that are not UTF-8, duplicate keys, lone surrogates and null or mistyped
 * {@code since} values are refused with the documented code, and the connection stays usable after each.
 */
class StrictInputTest {
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

    /** {@code text} as UTF-8 with each {@code <xx>} replaced by the raw byte 0xxx, then a newline. */
    private static byte[] bytes(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < text.length(); ) {
            if (text.charAt(i) == '<') {
                out.write(HexFormat.fromHexDigits(text, i + 1, i + 3));
                i += 4;
            } else {
                int cp = text.codePointAt(i);
                out.writeBytes(Character.toString(cp).getBytes(StandardCharsets.UTF_8));
                i += Character.charCount(cp);
            }
        }
        out.write('\n');
        return out.toByteArray();
    }

    /** The error of the one response to {@code raw}, after checking it has id null and the connection still works. */
    private static JsonObject errorOf(byte[] raw) throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendRaw(raw);
            JsonObject r = c.read(10_000).object();
            assertTrue(r.containsKey("id") && r.getValue("id") == null, "id null: " + r);
            assertNull(r.getValue("result"), r.toString());
            assertEquals(2, c.request("device.list").getJsonArray("devices").size(), "still usable");
            return r.getJsonObject("error");
        }
    }

    @Test
    void anOverlongEncodingOfADotDoesNotCallRpcMethods() throws Exception {
        JsonObject e = errorOf(bytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc<c0><ae>methods\"}"));
        assertEquals(-32700, e.getInteger("code"), e.toString());
        assertEquals("parse error: invalid UTF-8 at byte 37 (0xc0)", e.getString("message"));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "overlong NUL               | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a<c0><80>\"}",
            "overlong 3-byte slash      | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"<e0><80><af>\"}",
            "UTF-8 encoded surrogate    | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"<ed><a0><80>\"}",
            "above U+10FFFF             | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"<f4><90><80><80>\"}",
            "lone continuation byte     | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"<80>\"}",
            "truncated sequence         | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"<e2><82>\"}",
            "invalid byte 0xff          | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":<ff>}",
            "latin-1 in a key           | {\"jsonrpc\":\"2.0\",\"id\":1,\"m<e9>thod\":\"x\"}",
    })
    void invalidUtf8IsAParseErrorNamingTheByte(String name, String line) throws Exception {
        int offset = line.substring(0, line.indexOf('<')).getBytes(StandardCharsets.UTF_8).length; // the first bad byte
        JsonObject e = errorOf(bytes(line));
        assertEquals(-32700, e.getInteger("code"), name + ": " + e);
        assertTrue(e.getString("message").startsWith("parse error: invalid UTF-8 at byte " + offset + " "), name + ": " + e);
    }

    @Test
    void validMultiByteUtf8StillWorks() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendRaw(bytes("{\"jsonrpc\":\"2.0\",\"id\":\"é€😀\",\"method\":\"rpc.methods\"}"));
            JsonObject r = c.read(10_000).object();
            assertEquals("é€😀", r.getString("id"));
            assertTrue(r.containsKey("result"), r.toString());
            c.sendRaw(bytes("{\"jsonrpc\":\"2.0\",\"id\":\"\\ud83d\\ude00\",\"method\":\"rpc.methods\"}"));
            assertEquals("😀", c.read(10_000).object().getString("id"), "an escaped surrogate pair is one character");
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "top level         | {\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"server.info\"}                       | id | /id",
            "method twice      | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",\"method\":\"device.reset\"} | method | /method",
            "in params         | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"device.get\",\"params\":{\"device\":\"a\",\"device\":\"b\"}} | device | /params/device",
            "deeper            | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\",\"params\":{\"since\":{\"x\":1,\"x\":2}}} | x | /params/since/x",
            "in an array       | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"l\":[{},{\"k\":1,\"k\":1}]}} | k | /params/l/1/k",
            "in a batch        | [{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"},{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server.info\"}] | jsonrpc | /1/jsonrpc",
    })
    void duplicateKeysAreInvalidRequests(String name, String line, String key, String pointer) throws Exception {
        JsonObject e = errorOf(bytes(line));
        assertEquals(-32600, e.getInteger("code"), name + ": " + e);
        assertEquals("invalid request: duplicate key \"" + key + "\" at " + pointer + " (each key may appear once per object)",
                e.getString("message"), name);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "lone high        | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc.methods\\ud800\"}     | \\ud800 at /method",
            "lone low         | {\"jsonrpc\":\"2.0\",\"id\":\"\\udc00x\",\"method\":\"rpc.methods\"} | \\udc00 at /id",
            "reversed pair    | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\ude00\\ud83d\"}          | \\ude00 at /method",
            "in a key         | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"\\ud800\":1}} | \\ud800 at /params/\\ud800",
            "top-level string | \"\\udfff\"                                                            | \\udfff at the top level",
    })
    void loneSurrogateEscapesAreParseErrors(String name, String line, String what) throws Exception {
        JsonObject e = errorOf(bytes(line));
        assertEquals(-32700, e.getInteger("code"), name + ": " + e);
        String message = e.getString("message");
        assertTrue(message.startsWith("parse error: " + what.substring(0, 6)) && message.contains(" is a lone surrogate"),
                name + ": " + message);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "comment        | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\" /* c */}",
            "trailing comma | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",}",
            "two values     | {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"} {}",
            "single quotes  | {'jsonrpc':\"2.0\",\"id\":1,\"method\":\"server.info\"}",
            "NaN            | {\"jsonrpc\":\"2.0\",\"id\":NaN,\"method\":\"server.info\"}",
    })
    void onlyRfc8259JsonIsAccepted(String name, String line) throws Exception {
        JsonObject e = errorOf(bytes(line));
        assertEquals(-32700, e.getInteger("code"), name + ": " + e);
        assertTrue(e.getString("message").startsWith("parse error: the line is not JSON ("), name + ": " + e);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "null      | null             | got null",
            "string    | \"5\"            | got a string",
            "negative  | -1               | is negative (-1)",
            "float     | 1.5              | must be an integer, got 1.5",
            "object    | {}               | got an object",
            "above u64 | 18446744073709551616 | above its range",
    })
    void sinceValuesThatAreNotU64AreInvalidParamsNamingTheField(String name, String value, String says) throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            c.sendRaw(bytes("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"events.subscribe\",\"params\":{\"since\":{\""
                    + NVME + "\":" + value + "}}}"));
            JsonObject r = c.read(10_000).object();
            assertEquals(7, r.getInteger("id"));
            JsonObject e = r.getJsonObject("error");
            assertEquals(-32602, e.getInteger("code"), name + ": " + r);
            assertEquals("since[\"" + NVME + "\"]", e.getJsonObject("data").getString("field"), name);
            assertTrue(e.getString("message").startsWith("field 'since[\"" + NVME + "\"]' "), e.getString("message"));
            assertTrue(e.getString("message").contains(says), name + ": " + e.getString("message"));
        }
    }

    @Test
    void aValidSinceStillSubscribes() throws Exception {
        try (VfioExportClient c = daemon.connect()) {
            JsonObject r = c.request("events.subscribe", new JsonObject().put("devices", new io.vertx.core.json.JsonArray().add(NVME))
                    .put("since", new JsonObject().put(NVME, 0)));
            assertTrue(r.getString("subscription").startsWith("sub-"), r.toString());
        }
    }
}

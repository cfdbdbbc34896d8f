package org.vfioexport.events;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.time.Instant;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The streaming encoding of responses, events and audit records is the text {@code Json} gives, in each form. */
class JsonEncodingTest {
    private static JsonObject sample() {
        return new JsonObject()
                .put("jsonrpc", "2.0").put("id", 7).put("big", new BigInteger("18446744073709551615")).put("long", Long.MIN_VALUE)
                .put("double", 0.1).put("yes", true).put("none", (Object) null)
                .put("text", "quote \" backslash \\ tab \t newline \n nul \u0000 del \u007f é 漢 \uD83D\uDE00 </script>")
                .put("lone", "high \ud800 then a space, low \udc00, reversed \ude00\ud83d")
                .put("result", new JsonObject().put("export_id", "0000:01:00.0/1").put("ranges",
                        new JsonArray().add(new JsonObject().put("offset", 0).put("length", 4096L)).add(new JsonArray()))
                        .put("empty", new JsonObject()))
                .put("when", Instant.parse("2026-11-29T09:09:03.974Z"))
                .put("bytes", new byte[] {1, 2, 3, (byte) 0xff});
    }

    @Test
    void sameTextAsJsonEncode() {
        JsonObject o = sample();
        assertEquals(Json.encode(o), JsonEncoding.encode(o));
        assertEquals(Json.encodeToBuffer(o), JsonEncoding.encodeToBuffer(o));
        JsonArray batch = new JsonArray().add(o).add(new JsonObject().put("jsonrpc", "2.0").put("id", "x").put("result", new JsonObject()));
        assertEquals(Json.encode(batch), JsonEncoding.encode(batch));
        assertEquals(Json.encodeToBuffer(batch), JsonEncoding.encodeToBuffer(batch));
    }

    record Pojo(String name, int n) {}

    @Test
    void aValueOnlyDatabindKnowsFallsBackToJson() {
        JsonObject o = new JsonObject().put("pojo", new Pojo("a", 1)).put("x", 1);
        assertEquals(Json.encode(o), JsonEncoding.encode(o));
        assertEquals(Json.encodeToBuffer(o), JsonEncoding.encodeToBuffer(o));
    }

    @Test
    void anEventsNotificationLineIsItsJsonEncoded() {
        Event e = new Event(3, "0000:01:00.0", EventType.EXPORT_CREATED, "0000:01:00.0/1", Cause.CLIENT, Instant.parse("2026-11-29T09:09:03.974Z"), "live", 0, 0);
        String expected = Json.encode(new JsonObject().put("jsonrpc", "2.0").put("method", "event").put("params", e.toJson())) + "\n";
        assertEquals(expected, new String(e.notificationLine(), java.nio.charset.StandardCharsets.UTF_8));
    }
}

package org.vfioexport.client.vertx;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

import java.math.BigInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The client's JSON codec gives what Vert.x's own (Jackson) codec gives, and writes what it reads. */
class JsonTextTest {
    @Test
    void parsesAsVertxDoes() {
        String text = "{\"a\":1,\"b\":-2147483649,\"c\":18446744073709551615,\"d\":1.5e3,\"e\":\"x\\n\\u00e9\\\"\","
                + "\"f\":[true,false,null,{}],\"g\":{\"h\":[]},\"i\":0,\"j\":-0.25}";
        JsonObject mine = (JsonObject) JsonText.parse(text);
        JsonObject vertx = new JsonObject(text);
        assertEquals(vertx, mine);
        assertInstanceOf(Integer.class, mine.getValue("a"));
        assertInstanceOf(Long.class, mine.getValue("b"));
        assertEquals(new BigInteger("18446744073709551615"), mine.getValue("c"));
        assertEquals(1500.0, mine.getDouble("d"));
        assertEquals("x\né\"", mine.getString("e"));
        assertNull(mine.getJsonArray("f").getValue(2));
        assertEquals(new JsonArray().add(1).add("two"), JsonText.parse(" [ 1 , \"two\" ] "));
        assertEquals("\ud83d\ude00", JsonText.parse("\"\\ud83d\\ude00\""));
    }

    @Test
    void writesWhatItReads() {
        JsonObject o = new JsonObject().put("s", "tab\there \"quoted\" \\ \u0001").put("n", 7).put("l", 1L << 40)
                .put("u", new BigInteger("18446744073709551615")).put("d", 0.5).put("b", true).putNull("z")
                .put("a", new JsonArray().add(new JsonObject()).add(new JsonArray()));
        String compact = JsonText.encode(o);
        assertEquals(o, JsonText.parse(compact));
        assertEquals(o, new JsonObject(compact), "Vert.x reads it too");
        assertEquals(1, compact.lines().count());
        String pretty = JsonText.encodePretty(o);
        assertEquals(o, JsonText.parse(pretty));
        assertEquals("{\n  \"k\": [\n    1\n  ]\n}", JsonText.encodePretty(new JsonObject().put("k", new JsonArray().add(1))));
    }

    @Test
    void refusesWhatIsNotJson() {
        for (String bad : new String[]{"", "{", "{\"a\":}", "[1,]", "{'a':1}", "01", "1.", "-", "tru", "\"\\x\"",
                "\"a\nb\"", "{} {}", "NaN", "[1 2]", "{\"a\" 1}"}) {
            assertThrows(IllegalArgumentException.class, () -> JsonText.parse(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> JsonText.parseObject("[1]"));
        assertThrows(IllegalArgumentException.class, () -> JsonText.parse("[".repeat(10_000)), "deep nesting");
        assertThrows(IllegalArgumentException.class, () -> JsonText.encode(Double.NaN));
    }
}

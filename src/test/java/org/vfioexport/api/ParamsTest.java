package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ParamsTest {
    private static Params of(String json) {
        return Params.of(new JsonObject(json));
    }

    private static String field(Runnable r) {
        RpcException e = assertThrows(RpcException.class, r::run);
        assertEquals(ErrorCode.INVALID_PARAMS, e.code());
        return e.data().getString("field");
    }

    @Test
    void u64KeepsAllSixtyFourBits() {
        assertEquals(-1L, of("{\"v\":18446744073709551615}").u64("v"));
        assertEquals(-4096L, of("{\"v\":18446744073709547520}").u64("v"));
        assertEquals(Long.MIN_VALUE, of("{\"v\":9223372036854775808}").u64("v"));
        assertEquals(0L, of("{\"v\":0}").u64("v"));
        assertEquals(4096L, of("{\"v\":4096}").u64("v"));
    }

    @Test
    void numbersOutsideTheirFieldAreShapeErrors() {
        assertEquals("v", field(() -> of("{\"v\":18446744073709551616}").u64("v")));
        assertEquals("v", field(() -> of("{\"v\":-1}").u64("v")));
        assertEquals("v", field(() -> of("{\"v\":1.5}").u64("v")));
        assertEquals("v", field(() -> of("{\"v\":2.0}").u64("v")));
        assertEquals("v", field(() -> of("{\"v\":4294967296}").u32("v")));
        assertEquals(4294967295L, of("{\"v\":4294967295}").u32("v"));
        assertEquals("v", field(() -> of("{\"v\":\"1\"}").u64("v")));
        assertEquals("v", field(() -> of("{\"v\":null}").u64("v")));
        assertEquals("v", field(() -> of("{}").u64("v")));
    }

    @Test
    void unknownFieldsAndNestedNamesAreReported() {
        assertEquals("b", field(() -> of("{\"a\":1,\"b\":2}").only("a")));
        Params p = of("{\"r\":[{\"offset\":1},{\"offset\":-2}]}");
        assertEquals("r[1].offset", field(() -> p.element("r", p.array("r"), 1).u64("offset")));
        assertEquals("s[\"x\"]", field(() -> of("{\"s\":{\"x\":true}}").u64Map("s")));
        assertEquals("l[1]", field(() -> of("{\"l\":[\"a\",2]}").stringList("l")));
        assertEquals("params", field(() -> Params.of(new io.vertx.core.json.JsonArray())));
    }

    /** Every accessor turns a null or mistyped value into -32602 naming it, never a NullPointerException (-32603). */
    @Test
    void nullOrMistypedValuesAreShapeErrorsInEveryAccessor() {
        assertEquals("s[\"0000:01:00.0\"]", field(() -> of("{\"s\":{\"0000:01:00.0\":null}}").u64Map("s")));
        assertEquals("s[\"a\\\"b\"]", field(() -> of("{\"s\":{\"a\\\"b\":null}}").u64Map("s")));
        assertEquals("s[\"x\"]", field(() -> of("{\"s\":{\"x\":\"1\"}}").u64Map("s")));
        assertEquals("s[\"x\"]", field(() -> of("{\"s\":{\"x\":{}}}").u64Map("s")));
        assertEquals("s", field(() -> of("{\"s\":null}").u64Map("s")));
        assertEquals("s", field(() -> of("{\"s\":[1]}").u64Map("s")));
        assertEquals("l[0]", field(() -> of("{\"l\":[null]}").stringList("l")));
        assertEquals("l", field(() -> of("{\"l\":null}").stringList("l")));
        Params p = of("{\"r\":[null]}");
        assertEquals("r[0]", field(() -> p.element("r", p.array("r"), 0)));
        assertEquals("v", field(() -> of("{\"v\":null}").string("v")));
        assertEquals("v", field(() -> of("{\"v\":null}").optString("v")));
        assertEquals("v", field(() -> of("{\"v\":null}").bool("v")));
        assertEquals("v", field(() -> of("{\"v\":null}").u32("v")));
        assertEquals("v", field(() -> of("{\"v\":null}").array("v")));
        assertEquals("v", field(() -> of("{\"v\":null}").object("v")));
    }
}

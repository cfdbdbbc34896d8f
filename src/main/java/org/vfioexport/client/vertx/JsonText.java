package org.vfioexport.client.vertx;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The client library's JSON ({@link org.vfioexport.client.JsonText}: plain maps and lists, no Jackson) seen as
 * Vert.x's JSON types, for the daemon's command line and tests. Parsed values are wrapped, not copied: a
 * {@link JsonObject} over the parsed map, whose nested maps and lists Vert.x wraps as they are read.
 */
public final class JsonText {
    private JsonText() {}

    /** The value of one JSON text: {@link JsonObject}, {@link JsonArray}, String, Boolean, a Number or null. */
    public static Object parse(String text) {
        return wrap(org.vfioexport.client.JsonText.parse(text));
    }

    /** The JSON object {@code text} must be. */
    public static JsonObject parseObject(String text) {
        return new JsonObject(org.vfioexport.client.JsonText.parseObject(text));
    }

    /** Compact JSON, one line. */
    public static String encode(Object value) {
        return org.vfioexport.client.JsonText.encode(plain(value));
    }

    /** JSON indented by two spaces per level, for people. */
    public static String encodePretty(Object value) {
        return org.vfioexport.client.JsonText.encodePretty(plain(value));
    }

    /** A decoded value as Vert.x's type: maps become {@link JsonObject}, lists {@link JsonArray} (both wrap). */
    @SuppressWarnings("unchecked")
    public static Object wrap(Object v) {
        if (v instanceof Map<?, ?> m) return new JsonObject((Map<String, Object>) m);
        if (v instanceof List<?> l) return new JsonArray((List<Object>) l);
        return v;
    }

    public static JsonObject object(Map<String, Object> m) {
        return m == null ? null : new JsonObject(m);
    }

    /** Vert.x's JSON types, at any depth, as plain maps and lists (what the client library writes). */
    public static Object plain(Object v) {
        if (v instanceof JsonObject o) v = o.getMap();
        if (v instanceof JsonArray a) v = a.getList();
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) out.put(String.valueOf(e.getKey()), plain(e.getValue()));
            return out;
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object x : l) out.add(plain(x));
            return out;
        }
        return v;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> plainObject(JsonObject o) {
        return o == null ? null : (Map<String, Object>) plain(o);
    }
}

package org.vfioexport.api;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Strict, side-effect-free reading of a method's params. Every shape problem (missing, unknown or mistyped field,
 * negative, fractional or out-of-range number) becomes {@code -32602} naming the field; every well-typed value is
 * returned unchanged, so the kernel judges it. Unsigned 64-bit values come back as the same 64 bits in a long
 * (values above {@link Long#MAX_VALUE} are negative longs, as in the kernel uAPI's {@code __u64}).
 */
public final class Params {
    private static final BigInteger U64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
    public static final long U32_MAX = 0xFFFF_FFFFL;

    private final JsonObject json;
    private final String prefix;

    private Params(JsonObject json, String prefix) {
        this.json = json;
        this.prefix = prefix;
    }

    /** The params member of a request: absent means no params; anything but an object is an error. */
    public static Params of(Object params) {
        if (params == null) return new Params(new JsonObject(), "");
        if (params instanceof JsonObject o) return new Params(o, "");
        throw RpcException.invalidParams("params", "params must be an object (by-name), got " + typeName(params));
    }

    /** Rejects any field not in {@code names}. Call it first: an unknown field is a shape error. */
    public Params only(String... names) {
        Set<String> allowed = Set.of(names);
        for (String k : json.fieldNames()) {
            if (!allowed.contains(k)) {
                throw RpcException.invalidParams(path(k), "unknown field '" + path(k) + "'"
                        + (names.length == 0 ? ": this method takes no params" : "; expected " + String.join(", ", names)));
            }
        }
        return this;
    }

    public boolean has(String name) {
        return json.containsKey(name);
    }

    public String string(String name) {
        Object v = required(name);
        if (v instanceof String s) return s;
        throw mistyped(name, "a string", v);
    }

    public String optString(String name) {
        return has(name) ? string(name) : null;
    }

    public boolean bool(String name) {
        Object v = required(name);
        if (v instanceof Boolean b) return b;
        throw mistyped(name, "true or false", v);
    }

    /** An unsigned 64-bit integer, as its 64 bits. */
    public long u64(String name) {
        return unsigned(name, required(name), U64_MAX, "0 to 2^64-1");
    }

    /** An unsigned 32-bit integer. */
    public long u32(String name) {
        return unsigned(name, required(name), BigInteger.valueOf(U32_MAX), "0 to 2^32-1");
    }

    public JsonArray array(String name) {
        Object v = required(name);
        if (v instanceof JsonArray a) return a;
        throw mistyped(name, "an array", v);
    }

    public JsonObject object(String name) {
        Object v = required(name);
        if (v instanceof JsonObject o) return o;
        throw mistyped(name, "an object", v);
    }

    /** A list of strings; element errors name the element, e.g. {@code devices[2]}. */
    public List<String> stringList(String name) {
        JsonArray a = array(name);
        List<String> out = new ArrayList<>(a.size());
        for (int i = 0; i < a.size(); i++) {
            Object v = a.getValue(i);
            if (!(v instanceof String s)) throw mistyped(name + "[" + i + "]", "a string", v);
            out.add(s);
        }
        return out;
    }

    /** The params of the object at {@code name[index]}, for nested checking with exact field names. */
    public Params element(String name, JsonArray array, int index) {
        Object v = array.getValue(index);
        String p = name + "[" + index + "]";
        if (v instanceof JsonObject o) return new Params(o, path(p) + ".");
        throw mistyped(p, "an object", v);
    }

    /**
     * The values of an object field as unsigned 64-bit integers, keyed by member name. A value's errors name it
     * as {@code name["member"]} (the member quoted as a JSON string: device names hold dots and colons).
     */
    public java.util.Map<String, Long> u64Map(String name) {
        JsonObject o = object(name);
        java.util.Map<String, Long> out = new java.util.LinkedHashMap<>();
        for (String k : o.fieldNames()) {
            out.put(k, unsigned(name + "[" + Json.encode(k) + "]", o.getValue(k), U64_MAX, "0 to 2^64-1"));
        }
        return out;
    }

    private Object required(String name) {
        if (!json.containsKey(name)) throw RpcException.invalidParams(path(name), "missing field '" + path(name) + "'");
        Object v = json.getValue(name);
        if (v == null) throw RpcException.invalidParams(path(name), "field '" + path(name) + "' is null");
        return v;
    }

    private long unsigned(String name, Object v, BigInteger max, String range) {
        BigInteger b = switch (v) {
            case null -> throw mistyped(name, "an unsigned integer", null); // a u64Map member: fields met required()
            case Integer i -> BigInteger.valueOf(i);
            case Long l -> BigInteger.valueOf(l);
            case Short s -> BigInteger.valueOf(s);
            case Byte y -> BigInteger.valueOf(y);
            case BigInteger bi -> bi;
            case BigDecimal bd -> throw notInteger(name, bd.toPlainString());
            case Double d -> throw notInteger(name, d.toString());
            case Float f -> throw notInteger(name, f.toString());
            default -> throw mistyped(name, "an unsigned integer", v);
        };
        if (b.signum() < 0) {
            throw RpcException.invalidParams(path(name), "field '" + path(name) + "' is negative (" + b + "); it must be " + range);
        }
        if (b.compareTo(max) > 0) {
            throw RpcException.invalidParams(path(name), "field '" + path(name) + "' is " + b + ", above its range " + range);
        }
        return b.longValue(); // the low 64 bits: exactly the u64 the kernel sees
    }

    private RpcException notInteger(String name, String shown) {
        return RpcException.invalidParams(path(name), "field '" + path(name) + "' must be an integer, got " + shown);
    }

    private RpcException mistyped(String name, String expected, Object v) {
        return RpcException.invalidParams(path(name), "field '" + path(name) + "' must be " + expected + ", got "
                + typeName(v));
    }

    private String path(String name) {
        return prefix + name;
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "null";
            case String s -> "a string";
            case Boolean b -> "a boolean";
            case JsonObject o -> "an object";
            case JsonArray a -> "an array";
            case Number n -> "the number " + n;
            default -> v.getClass().getSimpleName();
        };
    }
}

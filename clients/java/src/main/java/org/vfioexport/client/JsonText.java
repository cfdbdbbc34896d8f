package org.vfioexport.client;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON text to plain Java values and back, with no library: objects are {@code Map<String, Object>} (key order
 * kept), arrays {@code List<Object>}, then String, Boolean, null, integers as Integer, Long or BigInteger by size,
 * other numbers as Double. Input is RFC 8259: anything else is an {@link IllegalArgumentException} naming the
 * column. Writing takes the same types (and any Map, List, Number, CharSequence or enum).
 */
public final class JsonText {
    private final String s;
    private int i;

    private JsonText(String s) {
        this.s = s;
    }

    /** The value of one JSON text. */
    public static Object parse(String text) {
        JsonText p = new JsonText(text);
        p.space();
        Object v = p.value(0);
        p.space();
        if (p.i != text.length()) throw p.error("trailing content after the JSON value");
        return v;
    }

    /** The JSON object {@code text} must be. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text) {
        if (parse(text) instanceof Map<?, ?> o) return (Map<String, Object>) o;
        throw new IllegalArgumentException("not a JSON object: " + text);
    }

    /** Compact JSON, one line. */
    public static String encode(Object value) {
        StringBuilder b = new StringBuilder();
        write(b, value, -1, 0);
        return b.toString();
    }

    /** JSON indented by two spaces per level, for people. */
    public static String encodePretty(Object value) {
        StringBuilder b = new StringBuilder();
        write(b, value, 2, 0);
        return b.toString();
    }

    // ---- parsing -----------------------------------------------------------------------------------------------

    /** Deeper nesting than any message of the protocol; bounds the recursion on hostile input. */
    private static final int MAX_DEPTH = 512;

    private Object value(int depth) {
        if (depth > MAX_DEPTH) throw error("nested deeper than " + MAX_DEPTH);
        if (i >= s.length()) throw error("no JSON value");
        char c = s.charAt(i);
        return switch (c) {
            case '{' -> object(depth);
            case '[' -> array(depth);
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", null);
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) yield number();
                throw error("unexpected character '" + c + "'");
            }
        };
    }

    private Map<String, Object> object(int depth) {
        Map<String, Object> m = new LinkedHashMap<>();
        i++;
        space();
        if (peek() == '}') {
            i++;
            return m;
        }
        while (true) {
            space();
            if (peek() != '"') throw error("expected a string key");
            String k = string();
            space();
            expect(':');
            space();
            m.put(k, value(depth + 1));
            space();
            char c = next();
            if (c == '}') return m;
            if (c != ',') throw error("expected ',' or '}'");
        }
    }

    private List<Object> array(int depth) {
        List<Object> l = new ArrayList<>();
        i++;
        space();
        if (peek() == ']') {
            i++;
            return l;
        }
        while (true) {
            space();
            l.add(value(depth + 1));
            space();
            char c = next();
            if (c == ']') return l;
            if (c != ',') throw error("expected ',' or ']'");
        }
    }

    private String string() {
        i++; // the opening quote
        StringBuilder b = null;
        int start = i;
        while (true) {
            if (i >= s.length()) throw error("unterminated string");
            char c = s.charAt(i);
            if (c == '"') {
                String v = b == null ? s.substring(start, i) : b.append(s, start, i).toString();
                i++;
                return v;
            }
            if (c < 0x20) throw error("control character in a string");
            if (c != '\\') {
                i++;
                continue;
            }
            if (b == null) b = new StringBuilder();
            b.append(s, start, i);
            i++;
            char e = next();
            switch (e) {
                case '"', '\\', '/' -> b.append(e);
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 't' -> b.append('\t');
                case 'u' -> {
                    if (i + 4 > s.length()) throw error("truncated \\u escape");
                    try {
                        b.append((char) Integer.parseInt(s, i, i + 4, 16));
                    } catch (NumberFormatException x) {
                        throw error("bad \\u escape");
                    }
                    i += 4;
                }
                default -> throw error("bad escape \\" + e);
            }
            start = i;
        }
    }

    private Object number() {
        int start = i;
        if (peek() == '-') i++;
        if (peek() == '0') i++;
        else if (!digits()) throw error("bad number");
        boolean integer = true;
        if (peek() == '.') {
            i++;
            if (!digits()) throw error("bad number");
            integer = false;
        }
        if (peek() == 'e' || peek() == 'E') {
            i++;
            if (peek() == '+' || peek() == '-') i++;
            if (!digits()) throw error("bad number");
            integer = false;
        }
        String t = s.substring(start, i);
        if (!integer) return Double.parseDouble(t);
        if (t.length() <= 18) {
            long v = Long.parseLong(t);
            return v == (int) v ? (Object) (int) v : (Object) v;
        }
        BigInteger v = new BigInteger(t);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private boolean digits() {
        int start = i;
        while (i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9') i++;
        return i > start;
    }

    private Object literal(String word, Object value) {
        if (!s.startsWith(word, i)) throw error("unexpected token");
        i += word.length();
        return value;
    }

    private void space() {
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            i++;
        }
    }

    private char peek() {
        return i < s.length() ? s.charAt(i) : '\0';
    }

    private char next() {
        if (i >= s.length()) throw error("unexpected end");
        return s.charAt(i++);
    }

    private void expect(char c) {
        if (next() != c) throw error("expected '" + c + "'");
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("not JSON: " + what + " at column " + (i + 1));
    }

    // ---- writing -----------------------------------------------------------------------------------------------

    private static void write(StringBuilder b, Object v, int indent, int level) {
        switch (v) {
            case null -> b.append("null");
            case Map<?, ?> m -> writeObject(b, m, indent, level);
            case List<?> l -> writeArray(b, l, indent, level);
            case String str -> quote(b, str);
            case Boolean bool -> b.append(bool);
            case Double d -> b.append(finite(d));
            case Float f -> b.append(finite(f));
            case BigDecimal d -> b.append(d.toString());
            case Number n -> b.append(n); // Integer, Long, BigInteger, Short, Byte
            case CharSequence cs -> quote(b, cs.toString());
            case Enum<?> e -> quote(b, e.name());
            default -> throw new IllegalArgumentException("not a JSON value: " + v.getClass().getName());
        }
    }

    private static double finite(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) throw new IllegalArgumentException("JSON has no " + d);
        return d;
    }

    private static void writeObject(StringBuilder b, Map<?, ?> m, int indent, int level) {
        if (m.isEmpty()) {
            b.append("{}");
            return;
        }
        b.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!first) b.append(',');
            first = false;
            newline(b, indent, level + 1);
            quote(b, String.valueOf(e.getKey()));
            b.append(indent < 0 ? ":" : ": ");
            write(b, e.getValue(), indent, level + 1);
        }
        newline(b, indent, level);
        b.append('}');
    }

    private static void writeArray(StringBuilder b, List<?> l, int indent, int level) {
        if (l.isEmpty()) {
            b.append("[]");
            return;
        }
        b.append('[');
        for (int k = 0; k < l.size(); k++) {
            if (k > 0) b.append(',');
            newline(b, indent, level + 1);
            write(b, l.get(k), indent, level + 1);
        }
        newline(b, indent, level);
        b.append(']');
    }

    private static void newline(StringBuilder b, int indent, int level) {
        if (indent < 0) return;
        b.append('\n');
        b.append(" ".repeat(indent * level));
    }

    private static void quote(StringBuilder b, String v) {
        b.append('"');
        for (int k = 0; k < v.length(); k++) {
            char c = v.charAt(k);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        b.append('"');
    }
}

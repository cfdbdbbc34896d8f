package org.vfioexport.load;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * The malformed-input corpus: lines that are not JSON, not UTF-8, nested too deep, with numbers out of every range,
 * params of the wrong type for every method, duplicate keys, junk batches, blank lines. Each case says what the
 * daemon must answer: exactly one error line with one of the allowed codes, no line at all (blank lines), or
 * at most one line of any kind (fuzzed lines, which may happen to be valid, or a notification).
 */
final class MalformedCorpus {
    /** Characters of JSON's syntax, inserted by the fuzzer. */
    private static final String JSON_CHARS = "{}[],:\"\\0123456789.eE-";

    static final int PARSE = -32700, INVALID = -32600, NO_METHOD = -32601, PARAMS = -32602;

    enum Expect { ERROR, NONE, AT_MOST_ONE }

    /** One line to send; {@code codes} are the allowed error codes (null: any stable code but -32603). */
    record Case(String category, String label, byte[] line, Expect expect, Set<Integer> codes) {}

    private final List<Case> cases = new ArrayList<>();

    private void error(String category, String label, String line, Integer... codes) {
        error(category, label, line.getBytes(StandardCharsets.UTF_8), codes);
    }

    private void error(String category, String label, byte[] line, Integer... codes) {
        cases.add(new Case(category, label, line, Expect.ERROR, codes.length == 0 ? null : Set.of(codes)));
    }

    private static String req(String id, String method, String paramsJson) {
        return "{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"" + method + "\"" + (paramsJson == null ? "" : ",\"params\":" + paramsJson) + "}";
    }

    private static byte[] bytes(Object... parts) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (Object p : parts) {
            if (p instanceof String s) o.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            else if (p instanceof int[] b) for (int x : b) o.write(x);
        }
        return o.toByteArray();
    }

    /**
     * The corpus for a daemon whose methods are {@code methods} (from rpc.methods) and whose line limit is
     * {@code maxLineBytes}; with {@code fuzz} more lines made by mutating valid requests (fixed seed).
     */
    static List<Case> build(List<String> methods, int maxLineBytes, int fuzz) {
        MalformedCorpus c = new MalformedCorpus();
        c.notJson();
        c.notUtf8();
        c.deepNesting();
        c.hugeNumbers();
        c.notRequests();
        c.unknownMethods(maxLineBytes);
        c.duplicateKeys();
        c.junkBatches();
        c.blankLines();
        c.wrongTypes(methods);
        c.fuzz(fuzz);
        return c.cases;
    }

    private void notJson() {
        String cat = "invalid JSON";
        // a parser that takes comments (Jackson as Vert.x sets it up) sees an empty object here: -32600 is one stable error too
        error(cat, "comment then {}", "/* c */ {}", PARSE, INVALID);
        for (String s : List.of("{", "}", "[", "]", "[1,", "{\"a\":}", "{\"a\" 1}", "nul", "tru", "-", "01", "1.", ".5", "NaN", "Infinity",
                "'x'", "{'jsonrpc':'2.0'}", "{jsonrpc:\"2.0\"}", "\"unterminated", "{\"a\":\"\\q\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"}}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"} {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server.info\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"}x",
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\"}",
                "\u0000", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\u0000\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ser\u0001ver.info\"}")) {
            error(cat, s.length() > 40 ? s.substring(0, 40) + "…" : s, s, PARSE);
        }
    }

    private void notUtf8() {
        String cat = "invalid UTF-8";
        Integer[] codes = {PARSE, INVALID, NO_METHOD, PARAMS, -32001};
        // overlong '.' (0xC0 0xAE): a lax decoder turns it into "rpc.methods", which must never be called
        error(cat, "overlong rpc\\xc0\\xaemethods", bytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"rpc", new int[] {0xc0, 0xae}, "methods\"}"), codes);
        error(cat, "overlong server\\xc0\\xaeinfo", bytes("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server", new int[] {0xc0, 0xae}, "info\"}"), codes);
        error(cat, "overlong NUL \\xc0\\x80", bytes("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"rpc.methods", new int[] {0xc0, 0x80}, "\"}"), codes);
        error(cat, "overlong '.' in a device id", bytes("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"device.get\",\"params\":{\"device\":\"0000:01:00",
                new int[] {0xc0, 0xae}, "0\"}}"), codes);
        error(cat, "3-byte overlong '.'", bytes("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"rpc", new int[] {0xe0, 0x80, 0xae}, "methods\"}"), codes);
        error(cat, "lone 0xff", bytes(new int[] {0xff}), codes);
        error(cat, "0xfe 0xff prefix", bytes(new int[] {0xfe, 0xff}, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"server.info\"}"), codes);
        error(cat, "0xff in a key", bytes("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"server.info\",\"params\":{\"", new int[] {0xff}, "\":1}}"), codes);
        error(cat, "truncated 3-byte sequence", bytes("{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"x", new int[] {0xe2, 0x82}, "\"}"), codes);
        error(cat, "encoded surrogate", bytes("{\"jsonrpc\":\"2.0\",\"id\":\"", new int[] {0xed, 0xa0, 0x80}, "\",\"method\":\"x\"}"), codes);
        error(cat, "5-byte form", bytes("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"x", new int[] {0xf8, 0x88, 0x80, 0x80, 0x80}, "\"}"), codes);
        error(cat, "above U+10FFFF", bytes("{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"x", new int[] {0xf4, 0x90, 0x80, 0x80}, "\"}"), codes);
        error(cat, "lone continuation bytes", bytes(new int[] {0x80, 0x81, 0xbf}), codes);
        error(cat, "invalid byte outside strings", bytes("{\"jsonrpc\":\"2.0\",", new int[] {0xc3}, "\"id\":11,\"method\":\"server.info\"}"), codes);
    }

    private void deepNesting() {
        String cat = "deep nesting";
        Integer[] codes = {PARSE, INVALID, PARAMS};
        for (int depth : new int[] {1_000, 10_000, 30_000}) {
            error(cat, "array depth " + depth, "[".repeat(depth) + "]".repeat(depth), codes);
            int objects = Math.min(depth, 10_000);   // 6 bytes a level: stays under the line limit
            error(cat, "object depth " + objects, "{\"a\":".repeat(objects) + "1" + "}".repeat(objects), codes);
            error(cat, "params depth " + depth, "{\"jsonrpc\":\"2.0\",\"id\":\"deep\",\"method\":\"server.info\",\"params\":{\"x\":"
                    + "[".repeat(depth / 2) + "]".repeat(depth / 2) + "}}", codes);
        }
        error(cat, "unclosed depth 30000", "[".repeat(30_000), PARSE);
    }

    private void hugeNumbers() {
        String cat = "huge numbers";
        String digits = "9".repeat(5_000);
        error(cat, "offset 2^64", req("1", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":18446744073709551616,\"length\":4096}"), PARAMS);
        error(cat, "length 5000 digits", req("2", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":0,\"length\":" + digits + "}"), PARSE, PARAMS);
        error(cat, "region 2^32", req("3", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":4294967296,\"offset\":0,\"length\":4096}"), PARAMS);
        error(cat, "offset 1e999999", req("4", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":1e999999,\"length\":4096}"), PARSE, PARAMS);
        error(cat, "length -1e308", req("5", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":0,\"length\":-1e308}"), PARAMS);
        error(cat, "offset -0", req("6", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":-0.0,\"length\":4096}"), PARAMS);
        error(cat, "since 2^70", req("7", "events.subscribe", "{\"since\":{\"0000:01:00.0\":1180591620717411303424}}"), PARAMS);
        error(cat, "id 1e400", req("1e400", "server.info", null), INVALID, PARSE);
        error(cat, "id 1.0", req("1.0", "server.info", null), INVALID);
        error(cat, "id -0.0", req("-0.0", "server.info", null), INVALID);
        error(cat, "id 5000 digits, unknown method", req(digits, "no.such", null), PARSE, NO_METHOD);
        error(cat, "region 5000 digits fraction", req("8", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0." + digits + ",\"offset\":0,\"length\":4096}"), PARSE, PARAMS);
    }

    private void notRequests() {
        String cat = "not a request";
        for (String s : List.of("1", "-1", "\"x\"", "null", "true", "false", "{}", "{\"jsonrpc\":\"2.0\"}",
                "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"server.info\"}", "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"server.info\"}",
                "{\"jsonrpc\":null,\"id\":1,\"method\":\"server.info\"}", "{\"id\":1,\"method\":\"server.info\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":1}", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":1}", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"server.info\"]}", "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"server.info\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"server.info\"}", "{\"jsonrpc\":\"2.0\",\"id\":[],\"method\":\"server.info\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"server.info\"}", "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"server.info\"}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",\"extra\":1}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server.info\",\"result\":{}}",
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}")) {
            error(cat, s.length() > 40 ? s.substring(0, 40) + "…" : s, s, INVALID);
        }
    }

    private void unknownMethods(int maxLineBytes) {
        String cat = "unknown method";
        for (String m : List.of("", " ", "rpc.", "export.create ", "EXPORT.CREATE", "server.info\\u0000", "../server.info", "rpc.methods.x")) {
            error(cat, "'" + m + "'", req("1", m, null), NO_METHOD);
        }
        String longName = "m".repeat(Math.max(16, maxLineBytes - 100));
        error(cat, "method name of " + longName.length() + " bytes", req("2", longName, null), NO_METHOD);
    }

    private void duplicateKeys() {
        String cat = "duplicate keys";
        // built so that whichever duplicate a parser keeps, the request is wrong: one error either way
        error(cat, "two methods, both unknown", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no.a\",\"method\":\"no.b\"}", NO_METHOD, INVALID, PARSE);
        error(cat, "two ids, both null", "{\"jsonrpc\":\"2.0\",\"id\":null,\"id\":null,\"method\":\"server.info\"}", INVALID, PARSE);
        error(cat, "two jsonrpc, both wrong", "{\"jsonrpc\":\"1.0\",\"jsonrpc\":\"3.0\",\"id\":1,\"method\":\"server.info\"}", INVALID, PARSE);
        error(cat, "two params, both wrong", req("1", "device.get", "{\"device\":1}") .replace("}}", "},\"params\":{\"device\":2}}"), PARAMS, INVALID, PARSE);
        error(cat, "duplicate param, both wrong types", req("2", "device.get", "{\"device\":1,\"device\":[]}"), PARAMS, INVALID, PARSE);
        error(cat, "duplicate param in export.create", req("3", "export.create",
                "{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":0,\"length\":\"x\",\"length\":\"y\"}"), PARAMS, INVALID, PARSE);
        error(cat, "duplicate in a batch element", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no.a\",\"method\":\"no.b\"}]", NO_METHOD, INVALID, PARSE);
    }

    private void junkBatches() {
        String cat = "junk batch";
        for (String s : List.of("[]", "[1]", "[1,2,3]", "[null]", "[\"\"]", "[[]]", "[[1,2]]", "[{}]", "[true,false]",
                "[{\"jsonrpc\":\"2.0\"}]", "[{\"jsonrpc\":\"2.0\",\"id\":\"b1\",\"method\":\"no.such\"},1]",
                "[{\"jsonrpc\":\"2.0\",\"id\":\"b2\",\"method\":\"device.get\",\"params\":{\"device\":1}},{\"jsonrpc\":\"2.0\",\"id\":\"b3\",\"method\":\"server.info\",\"params\":[]}]",
                "[" + "1,".repeat(99) + "1]", "[" + "{},".repeat(99) + "{}]")) {
            error(cat, s.length() > 40 ? s.substring(0, 40) + "…" : s, s, INVALID, NO_METHOD, PARAMS);
        }
    }

    private void blankLines() {
        for (String s : List.of("", " ", "\t", "\r", "  \r", " \t \t")) {
            cases.add(new Case("blank line", "'" + s.replace("\r", "\\r").replace("\t", "\\t") + "'", s.getBytes(StandardCharsets.UTF_8), Expect.NONE, null));
        }
    }

    /** Every method with params of the wrong shape, and each known field with a value of the wrong type. */
    private void wrongTypes(List<String> methods) {
        String cat = "wrong param types";
        List<String> strings = List.of("1", "true", "[]", "{}", "null", "1.5");
        List<String> ints = List.of("\"1\"", "1.5", "-1", "true", "[]", "{}", "null", "1e3");
        List<String> bools = List.of("\"true\"", "1", "null", "[]");
        List<String> arrays = List.of("\"x\"", "{}", "1", "null", "[1]");
        List<String> objects = List.of("[]", "\"x\"", "1", "null", "{\"0000:01:00.0\":\"1\"}", "{\"0000:01:00.0\":-1}");
        record F(String name, List<String> bad) {}
        List<F> fields = List.of(new F("device", strings), new F("region", ints), new F("offset", ints), new F("length", ints),
                new F("ranges", arrays), new F("open_flags", arrays), new F("enabled", bools), new F("export_id", strings),
                new F("since", objects), new F("devices", arrays), new F("subscription", strings), new F("importer_id", strings),
                new F("unmap_on_invalidate", bools));
        int id = 0;
        for (String m : methods) {
            for (String p : List.of("[]", "[1]", "\"x\"", "1", "true", "{\"zz_unknown\":1}")) {
                error(cat, m + " params " + p, req("\"wt" + (id++) + "\"", m, p), PARAMS, INVALID);
            }
            for (F f : fields) {
                for (String v : f.bad()) {
                    error(cat, m + " " + f.name() + "=" + v, req("\"wt" + (id++) + "\"", m, "{\"" + f.name() + "\":" + v + "}"), PARAMS);
                }
            }
        }
        // a valid export.create with one field made wrong
        String[] valid = {"\"device\":\"0000:01:00.0\"", "\"region\":0", "\"offset\":0", "\"length\":4096"};
        String[] names = {"device", "region", "offset", "length"};
        for (int i = 0; i < valid.length; i++) {
            for (String v : i == 0 ? strings : ints) {
                StringBuilder sb = new StringBuilder("{");
                for (int j = 0; j < valid.length; j++) sb.append(j == 0 ? "" : ",").append(j == i ? "\"" + names[j] + "\":" + v : valid[j]);
                error(cat, "export.create with " + names[i] + "=" + v, req("\"wx" + (id++) + "\"", "export.create", sb + "}"), PARAMS);
            }
        }
        for (String r : List.of("[{\"offset\":\"0\",\"length\":4096}]", "[1]", "[{\"offset\":0}]", "[{\"offset\":0,\"length\":4096,\"x\":1}]", "[null]", "[[0,4096]]")) {
            error(cat, "export.create ranges=" + r, req("\"wr" + (id++) + "\"", "export.create", "{\"device\":\"0000:01:00.0\",\"region\":0,\"ranges\":" + r + "}"), PARAMS);
        }
    }

    /** Valid requests with random bytes flipped, cut or inserted: any one line back (or none), never -32603. */
    private void fuzz(int n) {
        if (n <= 0) return;
        Random rnd = new Random(20_260_101L);
        List<String> seeds = List.of(req("1", "server.info", null), req("2", "device.get", "{\"device\":\"0000:02:00.0\"}"),
                req("3", "export.list", "{\"device\":\"0000:01:00.0\"}"), req("4", "events.unsubscribe", "{\"subscription\":\"s-1\"}"),
                req("5", "export.get", "{\"export_id\":\"0000:01:00.0/1\"}"),
                "[" + req("6", "device.list", null) + "," + req("7", "rpc.methods", null) + "]");
        for (int i = 0; i < n; i++) {
            byte[] b = seeds.get(rnd.nextInt(seeds.size())).getBytes(StandardCharsets.UTF_8);
            int edits = 1 + rnd.nextInt(4);
            for (int e = 0; e < edits; e++) {
                int at = rnd.nextInt(b.length);
                switch (rnd.nextInt(3)) {
                    case 0 -> b[at] = (byte) rnd.nextInt(256);
                    case 1 -> b = java.util.Arrays.copyOf(b, Math.max(1, at));
                    default -> {
                        byte[] nb = new byte[b.length + 1];
                        System.arraycopy(b, 0, nb, 0, at);
                        nb[at] = (byte) JSON_CHARS.charAt(rnd.nextInt(JSON_CHARS.length()));
                        System.arraycopy(b, at, nb, at + 1, b.length - at);
                        b = nb;
                    }
                }
            }
            for (int k = 0; k < b.length; k++) if (b[k] == '\n') b[k] = ' ';   // one line each
            cases.add(new Case("fuzzed", "mutation " + i, b, Expect.AT_MOST_ONE, null));
        }
    }
}

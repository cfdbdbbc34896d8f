package org.vfioexport.api;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;

/**
 * Strict decoding of one request line into the values Vert.x's JSON types hold ({@link JsonObject},
 * {@link JsonArray}, String, Boolean, null; integers as Integer, Long or BigInteger by size, other numbers as
 * Double), refusing what a lenient parser lets through:
 * <ul>
 * <li>bytes that are not UTF-8 (overlong forms such as {@code C0 AE} for '.', encoded surrogates, truncated
 *     sequences, code points above U+10FFFF): {@code -32700} naming the byte offset. Jackson alone decodes
 *     {@code rpc\xc0\xaemethods} to {@code rpc.methods};</li>
 * <li>anything beyond RFC 8259 JSON (comments, single quotes, trailing commas, NaN, trailing content):
 *     {@code -32700};</li>
 * <li>a {@code \\u} escape that leaves a lone surrogate in a string (not a Unicode character; I-JSON, RFC 7493,
 *     forbids it): {@code -32700};</li>
 * <li>a key repeated in one object, at any depth: {@code -32600}. Which of the two values counts is parser
 *     folklore (last wins here, first wins elsewhere), so the request is refused rather than guessed at.</li>
 * </ul>
 */
final class JsonLineDecoder {
    private JsonLineDecoder() {}

    /** Plain Jackson defaults are RFC 8259; field names are not interned (they are the client's, unbounded). */
    private static final JsonFactory FACTORY = JsonFactory.builder().disable(JsonFactory.Feature.INTERN_FIELD_NAMES).build();

    /** The JSON value of {@code line}, or an {@link RpcException} (-32700 or -32600) saying what is wrong with it. */
    static Object decode(Buffer line) {
        char[] text = utf8(line.getBytes());
        try (JsonParser p = FACTORY.createParser(text)) {
            p.nextToken();
            Object value = value(p);
            if (p.nextToken() != null) throw parseError("trailing content after the JSON value", p);
            return value;
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? "" : " at column " + e.getLocation().getColumnNr();
            throw new RpcException(ErrorCode.PARSE_ERROR, "parse error: the line is not JSON ("
                    + firstLine(e.getOriginalMessage()) + where + ")", null);
        } catch (IOException e) { // a char[] source has no I/O: only a parser failure lands here
            throw new RpcException(ErrorCode.PARSE_ERROR, "parse error: the line is not JSON (" + firstLine(e.getMessage()) + ")", null);
        }
    }

    /** The characters of strictly valid UTF-8 {@code bytes}; -32700 naming the first offending byte otherwise. */
    private static char[] utf8(byte[] bytes) {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never yields more chars than bytes
        CoderResult r = d.decode(in, out, true);
        if (!r.isError()) r = d.flush(out);
        if (r.isError()) {
            throw new RpcException(ErrorCode.PARSE_ERROR, "parse error: invalid UTF-8 at byte " + in.position()
                    + " (0x" + String.format("%02x", bytes[in.position()] & 0xff) + ")", null);
        }
        char[] text = new char[out.position()];
        out.flip().get(text);
        return text;
    }

    /** The value at the parser's current token (its last token consumed on return). */
    private static Object value(JsonParser p) throws IOException {
        JsonToken t = p.currentToken();
        if (t == null) throw parseError("no JSON value", p);
        return switch (t) {
            case START_OBJECT -> object(p);
            case START_ARRAY -> array(p);
            case VALUE_STRING -> text(p.getText(), p);
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> p.getNumberValue();
            case VALUE_TRUE -> Boolean.TRUE;
            case VALUE_FALSE -> Boolean.FALSE;
            case VALUE_NULL -> null;
            default -> throw parseError("unexpected " + t, p);
        };
    }

    private static JsonObject object(JsonParser p) throws IOException {
        LinkedHashMap<String, Object> members = new LinkedHashMap<>();
        for (String key = p.nextFieldName(); key != null; key = p.nextFieldName()) {
            text(key, p);
            if (members.containsKey(key)) {
                throw new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: duplicate key " + Json.encode(key)
                        + " at " + where(p) + " (each key may appear once per object)", null);
            }
            p.nextToken();
            members.put(key, value(p));
        }
        return new JsonObject(members);
    }

    private static JsonArray array(JsonParser p) throws IOException {
        JsonArray a = new JsonArray();
        while (p.nextToken() != JsonToken.END_ARRAY) a.add(value(p));
        return a;
    }

    /** {@code s} itself, unless an escape left a surrogate unpaired in it (valid UTF-8 input cannot carry one). */
    private static String text(String s, JsonParser p) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new RpcException(ErrorCode.PARSE_ERROR, String.format("parse error: \\u%04x at %s is a lone "
                        + "surrogate, not a Unicode character (pair it or use the character itself)", (int) c, where(p)), null);
            }
        }
        return s;
    }

    /** Where the parser is, as a JSON pointer ({@code /params/since}), or "the top level". */
    private static String where(JsonParser p) {
        String pointer = p.getParsingContext().pathAsPointer().toString();
        return pointer.isEmpty() ? "the top level" : pointer;
    }

    private static RpcException parseError(String what, JsonParser p) {
        return new RpcException(ErrorCode.PARSE_ERROR, "parse error: the line is not JSON (" + what + " at column "
                + p.currentLocation().getColumnNr() + ")", null);
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }
}

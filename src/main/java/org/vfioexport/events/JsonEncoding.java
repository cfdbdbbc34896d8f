package org.vfioexport.events;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.EncodeException;
import io.vertx.core.json.Json;
import io.vertx.core.json.jackson.JacksonCodec;

/**
 * JSON text of the daemon's hot-path messages (responses, event notifications, audit records) through Vert.x's
 * streaming codec. {@code Json.encode} uses the databind codec whenever jackson-databind is on the class path (the
 * configuration needs it), and that codec builds a fresh serializer provider for every nested object: under
 * export churn it was a tenth of the daemon's Java time. Each method gives the text of its {@code Json}
 * counterpart, byte for byte, for the types these messages hold (JSON objects and arrays, strings, numbers,
 * booleans, null): the string form writes a character beyond the BMP as itself, the byte form as an escaped
 * surrogate pair, as databind's do. Anything else falls back to {@code Json}.
 */
public final class JsonEncoding {
    private static final JacksonCodec STREAMING = new JacksonCodec();

    private JsonEncoding() {}

    /** As {@link Json#encode(Object)}. */
    public static String encode(Object json) {
        try {
            return STREAMING.toString(json, false);
        } catch (EncodeException e) {
            return Json.encode(json);   // a type only databind knows
        }
    }

    /** As {@link Json#encodeToBuffer(Object)}. */
    public static Buffer encodeToBuffer(Object json) {
        try {
            return STREAMING.toBuffer(json, false);
        } catch (EncodeException e) {
            return Json.encodeToBuffer(json);
        }
    }
}

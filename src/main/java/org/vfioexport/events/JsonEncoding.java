package org.vfioexport.events;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.buffer.Unpooled;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.json.EncodeException;
import io.vertx.core.json.Json;
import io.vertx.core.json.jackson.JacksonCodec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * JSON text of the daemon's hot-path messages (responses, event notifications, audit records) through Vert.x's
 * streaming encoder. {@code Json.encode} uses the databind codec whenever jackson-databind is on the class path (the
 * configuration needs it), and that codec builds a fresh serializer provider for every nested object: under
 * export churn it was a tenth of the daemon's Java time. The text is the same, byte for byte, for the types these
 * messages hold (JSON objects and arrays, strings, numbers, booleans, null); anything else falls back to {@code Json}.
 */
public final class JsonEncoding {
    /** UTF-8 out, a character beyond the BMP written as itself (as databind writes it), not as an escaped surrogate pair. */
    private static final JsonFactory FACTORY = JsonFactory.builder()
            .enable(JsonWriteFeature.COMBINE_UNICODE_SURROGATES_IN_UTF8).build();

    private JsonEncoding() {}

    public static String encode(Object json) {
        return encodeToBuffer(json).toString(StandardCharsets.UTF_8);
    }

    public static Buffer encodeToBuffer(Object json) {
        ByteBuf buf = Unpooled.buffer(256);
        try (JsonGenerator g = FACTORY.createGenerator((java.io.OutputStream) new ByteBufOutputStream(buf))) {
            JacksonCodec.encodeJson(json, g);
        } catch (EncodeException e) {
            return Json.encodeToBuffer(json);   // a type only databind knows
        } catch (IOException e) {
            throw new EncodeException(e.getMessage(), e);   // not from memory
        }
        return BufferInternal.buffer(buf);
    }
}

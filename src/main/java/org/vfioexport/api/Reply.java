package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.vfioexport.device.Export;

/**
 * A method's successful result. When {@code export} is set, the response line carries a duplicate of the
 * export's dma-buf fd and the result gets its {@code fd_index}. {@code immediate} marks a result computed on the
 * connection's loop without any device operation: it may be written at once.
 */
public record Reply(JsonObject result, Export export, boolean immediate) {
    /** The result of a device operation. */
    public static Reply of(JsonObject result) {
        return new Reply(result, null, false);
    }

    /** A result computed on the connection's loop, involving no device. */
    public static Reply now(JsonObject result) {
        return new Reply(result, null, true);
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.vfioexport.device.Export;

/**
 * A method's successful result. When {@code export} is set, the response line carries a duplicate of the
 * export's dma-buf fd and the result gets its {@code fd_index}.
 */
public record Reply(JsonObject result, Export export) {
    public static Reply of(JsonObject result) {
        return new Reply(result, null);
    }
}

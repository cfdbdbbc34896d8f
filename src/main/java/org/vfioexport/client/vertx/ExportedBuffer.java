package org.vfioexport.client.vertx;

import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.Fd;

/** {@link org.vfioexport.client.ExportedBuffer} with the EXPORT object as a {@link JsonObject}; the caller owns the fd. */
public record ExportedBuffer(JsonObject export, Fd fd) implements AutoCloseable {
    public String id() {
        return export.getString("export_id");
    }

    public long size() {
        return export.getLong("size");
    }

    @Override
    public void close() {
        fd.close();
    }
}

package org.vfioexport.client.vertx;

import io.vertx.core.json.JsonObject;

/** {@link org.vfioexport.client.ExportedBuffer} with the EXPORT object as a {@link JsonObject}. */
public record ExportedBuffer(JsonObject export, int fd) {
    public String id() {
        return export.getString("export_id");
    }

    public long size() {
        return export.getLong("size");
    }
}

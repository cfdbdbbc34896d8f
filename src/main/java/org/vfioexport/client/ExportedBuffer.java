package org.vfioexport.client;

import io.vertx.core.json.JsonObject;

/** A successful {@code export.create}: the EXPORT object and the dma-buf fd that came with it (owned by the caller). */
public record ExportedBuffer(JsonObject export, int fd) {
    public String id() {
        return export.getString("export_id");
    }

    public long size() {
        return export.getLong("size");
    }
}

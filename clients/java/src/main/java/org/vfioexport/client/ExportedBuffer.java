package org.vfioexport.client;

import java.util.Map;

/** A successful {@code export.create}: the EXPORT object and the dma-buf fd that came with it (owned by the caller). */
public record ExportedBuffer(Map<String, Object> export, int fd) {
    public String id() {
        return (String) export.get("export_id");
    }

    public long size() {
        return Values.number(export.get("size"), "size");
    }
}

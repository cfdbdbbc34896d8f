package org.vfioexport.client;


import java.util.Map;
import org.vfioexport.ffm.posix.Fd;

/**
 * A successful {@code export.create}: the EXPORT object and the dma-buf fd that came with it, owned by the caller:
 * closing this closes the fd (once).
 */
public record ExportedBuffer(Map<String, Object> export, Fd fd) implements AutoCloseable {
    public String id() {
        return (String) export.get("export_id");
    }

    public long size() {
        return Values.number(export.get("size"), "size");
    }

    @Override
    public void close() {
        fd.close();
    }
}

package org.vfioexport.kernel.sim;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;

import java.util.function.Consumer;

/**
 * A dynamic importer's attachment to a simulated dma-buf, as an RDMA NIC or iommufd would hold one. It holds a
 * file reference of its own ({@code dma_buf_get}), so closing the exporter's fd does not release the buffer
 * while it is attached. {@code map} fails with ENODEV while the buffer is revoked, as in the iommufd
 * {@code dmabuf_revoke} selftest.
 */
public final class SimAttachment implements Importer {
    private final SimDmaBuf buf;
    private final Consumer<SimAttachment> onInvalidate;
    private int mapped;            // guarded by buf (the resv lock)
    private int invalidations;     // guarded by buf
    private boolean detached;      // guarded by buf

    SimAttachment(SimDmaBuf buf, Consumer<SimAttachment> onInvalidate) {
        this.buf = buf;
        this.onInvalidate = onInvalidate;
    }

    /** {@code dma_buf_map_attachment}: ENODEV while revoked. */
    @Override
    public void map() throws KernelException {
        synchronized (buf) {
            if (detached) throw new KernelException("dma_buf_map_attachment", Errno.EINVAL, "detached");
            if (buf.revoked()) throw new KernelException("dma_buf_map_attachment", Errno.ENODEV);
            mapped++;
            buf.mappingAdded();
        }
    }

    /** {@code dma_buf_unmap_attachment}: completes a pending 7.1 revoke once the last mapping is gone. */
    @Override
    public void unmap() {
        synchronized (buf) {
            if (mapped == 0) throw new IllegalStateException("unmap without map");
            mapped--;
            buf.mappingRemoved();
        }
    }

    /** {@code dma_buf_detach} + {@code dma_buf_put}: drops the importer's file reference. */
    public void detach() {
        synchronized (buf) {
            if (detached) return;
            while (mapped > 0) {
                mapped--;
                buf.mappingRemoved();
            }
            detached = true;
            buf.detachAttachment(this);
        }
        buf.fput();
    }

    @Override
    public int invalidations() {
        synchronized (buf) {
            return invalidations;
        }
    }

    @Override
    public int mapped() {
        synchronized (buf) {
            return mapped;
        }
    }

    @Override
    public State state() {
        synchronized (buf) {
            if (detached) return State.DETACHED;
            if (mapped == 0) return State.UNMAPPED;
            return buf.revoked() ? State.REVOKED : State.MAPPED;
        }
    }

    @Override
    public void close() {
        detach();
    }

    /** Called with the resv lock held, like {@code move_notify}/{@code invalidate_mappings}. */
    void invalidate() {
        invalidations++;
        onInvalidate.accept(this);
    }
}

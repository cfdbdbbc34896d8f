package org.vfioexport.kernel;

/**
 * A peer-to-peer importer's dynamic attachment to a dma-buf: what an RDMA NIC or iommufd holds in the kernel.
 * Only the simulated kernel lets userspace play one (real importers are drivers); it holds a file reference of its
 * own, so the buffer outlives the exporter's fd while attached.
 */
public interface Importer extends AutoCloseable {
    /** {@code dma_buf_map_attachment}: ENODEV while the buffer is revoked. */
    void map() throws KernelException;

    /** {@code dma_buf_unmap_attachment}; completes a pending 7.1 revoke once the last mapping is gone. */
    void unmap();

    int mapped();

    /** How many move-notify / invalidate callbacks this importer received. */
    int invalidations();

    /** {@code dma_buf_detach} + {@code dma_buf_put}. Idempotent. */
    @Override
    void close();
}

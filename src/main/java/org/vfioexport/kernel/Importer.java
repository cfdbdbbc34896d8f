package org.vfioexport.kernel;

/**
 * A peer-to-peer importer's dynamic attachment to a dma-buf: what an RDMA NIC or iommufd holds in the kernel.
 * On the simulated kernel a client plays one (it holds a file reference of its own, so the buffer outlives the
 * exporter's fd while attached); on Linux it is iommufd, which maps the buffer into an IO address space
 * ({@code IOMMU_IOAS_MAP_FILE}) where a device attached to that space reaches it by DMA.
 */
public interface Importer extends AutoCloseable {
    /** What the importer's mapping is now, as {@code importer.get} reports it. */
    enum State {
        /** No mapping. */
        UNMAPPED,
        /** Mapped, and the device can reach the buffer through it. */
        MAPPED,
        /** Mapped, but the exporter revoked the buffer: DMA through the mapping faults until it is mapped again. */
        REVOKED,
        /** Detached: nothing can be mapped any more. */
        DETACHED
    }

    /** {@code dma_buf_map_attachment}: ENODEV while the buffer is revoked. */
    void map() throws KernelException;

    /** {@code dma_buf_unmap_attachment}; completes a pending 7.1 revoke once the last mapping is gone. */
    void unmap();

    int mapped();

    /** How many move-notify / invalidate callbacks this importer received. */
    int invalidations();

    default State state() {
        return mapped() > 0 ? State.MAPPED : State.UNMAPPED;
    }

    /**
     * Whether the backend maps the buffer again itself when the exporter restores it. iommufd does: the kernel
     * zaps its page-table entries at a revoke and never restores them, so the backend unmaps and maps again from
     * the device's own events. An importer that does not remap unmaps when invalidated and maps again when asked.
     */
    default boolean remapsOnRestore() {
        return false;
    }

    /** How often the backend mapped the buffer again after a restore ({@link #remapsOnRestore()}). */
    default int remaps() {
        return 0;
    }

    /** The IO virtual address the buffer is mapped at in the importer's address space, or -1 when it has none. */
    default long iova() {
        return -1;
    }

    /** {@code dma_buf_detach} + {@code dma_buf_put}. Idempotent. */
    @Override
    void close();
}

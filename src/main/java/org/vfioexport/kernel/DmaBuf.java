package org.vfioexport.kernel;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.Fd;

/**
 * A dma-buf file the kernel handed out: its fd in this process and its size. Closing drops this process's
 * file reference (the kernel's {@code fput}); the buffer itself lives on while another reference exists (an
 * importer, or a copy passed to a client). Implementations close the fd exactly once.
 */
public interface DmaBuf extends AutoCloseable {
    int fd();

    long size();

    /**
     * A close-on-exec duplicate of the fd (a new file reference the caller owns and closes), or null if this
     * reference is already closed. Fails with the errno (EMFILE, ENFILE) when this process has no fd to spare.
     */
    Fd dup() throws KernelException;

    /** Drops this reference. Idempotent: only the first call closes the fd. */
    @Override
    void close();

    boolean isClosed();

    /**
     * Attaches a peer-to-peer importer with an invalidate callback (run with the buffer's reservation lock held;
     * it may unmap but must not block). EOPNOTSUPP on backends whose importers live in the kernel; ENODEV while
     * revoked.
     */
    default Importer attachImporter(java.util.function.Consumer<Importer> onInvalidate) throws KernelException {
        throw new KernelException("dma_buf_dynamic_attach", Errno.EOPNOTSUPP,
                "this backend has no importer for a client to drive");
    }

    /**
     * As {@link #attachImporter(java.util.function.Consumer)}, with a second callback run after the backend mapped
     * the buffer again following a restore (only importers that {@link Importer#remapsOnRestore()} call it).
     */
    default Importer attachImporter(java.util.function.Consumer<Importer> onInvalidate,
                                    java.util.function.Consumer<Importer> onRemap) throws KernelException {
        return attachImporter(onInvalidate);
    }
}

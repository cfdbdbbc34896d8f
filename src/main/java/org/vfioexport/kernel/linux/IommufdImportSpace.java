package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.KernelException;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The iommufd the backend's importers live in: one {@code /dev/iommu} fd for the whole backend, opened at the
 * first attach, closed with the backend. Each importer allocates its own IO address space in it, so importers
 * never compete for IOVAs and a device attached to an importer's space sees that export and nothing else.
 */
final class IommufdImportSpace implements AutoCloseable {
    private final VfioSyscalls sys;
    private final Path devIommu;
    private int fd = -1;       // guarded by this
    private boolean closed;    // guarded by this

    IommufdImportSpace(VfioSyscalls sys, Path devIommu) {
        this.sys = sys;
        this.devIommu = devIommu;
    }

    /** The iommufd, opened on first use. EOPNOTSUPP on a kernel without CONFIG_IOMMUFD. */
    synchronized int iommufd() throws KernelException {
        if (closed) throw new KernelException("IOMMU_IOAS_ALLOC", Errno.EBADF, "the backend is closed");
        if (fd >= 0) return fd;
        if (!Files.exists(devIommu)) {
            throw new KernelException("open", Errno.EOPNOTSUPP,
                    "no " + devIommu + ": this kernel has no iommufd (CONFIG_IOMMUFD) to import dma-bufs with");
        }
        try {
            fd = sys.open(devIommu.toString());
        } catch (PosixException e) {
            throw new KernelException("open", e.errno(), devIommu.toString());
        }
        return fd;
    }

    /** A call on the iommufd, made only while it is open (an importer can outlive the backend's close). */
    @FunctionalInterface
    interface Call<T> {
        T on(int iommufd) throws PosixException;
    }

    /**
     * Runs {@code c} on the iommufd under this object's lock, so the fd number cannot be closed (and reused by
     * another open) meanwhile. Returns null without calling when the space is closed: closing the iommufd
     * destroyed every IOAS and mapping in it, so there is nothing left to undo.
     */
    synchronized <T> T ifOpen(Call<T> c) throws PosixException {
        if (closed || fd < 0) return null;
        return c.on(fd);
    }

    @Override
    public synchronized void close() {
        closed = true;
        sys.closeQuietly(fd);
        fd = -1;
    }
}

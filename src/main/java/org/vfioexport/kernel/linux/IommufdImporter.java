package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.function.Consumer;

/**
 * iommufd as a dma-buf importer: {@code IOMMU_IOAS_MAP_FILE} maps the whole buffer (one range) into an IO
 * address space of its own, at a fixed IOVA, where a device attached to that space reaches the BAR by DMA.
 *
 * <p>What the kernel does and does not do (7.2, docs/kernel-semantics.md): at a revoke it removes the page-table
 * entries (DMA faults), keeps the IOVA area, and reports nothing; at a restore it maps nothing back. So this
 * importer learns of both from the device ({@link DeviceImporters}) and after a restore unmaps the dead area
 * and maps the buffer again at the same IOVA, so that a device programmed with it works again. While revoked,
 * {@code MAP_FILE} answers ENODEV, which is the kernel's own answer to {@link #map()} then.
 *
 * <p>It holds a file reference of its own (a dup of the dma-buf fd), as a kernel importer holds one, so the
 * buffer stays importable while attached even after its export was released.
 */
final class IommufdImporter implements Importer {
    /**
     * Where the buffer is mapped in the importer's own space: 1 MiB leaves the zero page unmapped and keeps the
     * buffer inside the 28- and 32-bit DMA masks of simple devices (QEMU's edu clamps DMA addresses to 28 bits).
     */
    static final long IOVA = 0x100000L;
    private static final Logger LOG = LoggerFactory.getLogger(IommufdImporter.class);

    private final VfioSyscalls sys;
    private final IommufdImportSpace space;
    private final DeviceImporters registry;
    private final int iommufd;
    private final int ioas;
    private final int fd;
    private final long size;
    private final Consumer<Importer> onInvalidate;
    private final Consumer<Importer> onRemap;
    // guarded by this
    private boolean wanted;      // the owner asked for the mapping and has not unmapped it
    private boolean areaPresent; // the IOVA area exists in the IOAS, live or dead (a dead one still holds its IOVAs)
    private boolean live;        // the mapping translates (not revoked since it was made)
    private boolean deviceGone;  // the device was closed: its dma-bufs are revoked for good
    private boolean detached;
    private int invalidations, remaps;

    private IommufdImporter(VfioSyscalls sys, IommufdImportSpace space, DeviceImporters registry, int iommufd, int ioas,
                            int fd, long size, Consumer<Importer> onInvalidate, Consumer<Importer> onRemap) {
        this.sys = sys;
        this.space = space;
        this.registry = registry;
        this.iommufd = iommufd;
        this.ioas = ioas;
        this.fd = fd;
        this.size = size;
        this.onInvalidate = onInvalidate;
        this.onRemap = onRemap;
    }

    /** Allocates the importer's address space and takes its own reference to the buffer. Maps nothing yet. */
    static IommufdImporter attach(VfioSyscalls sys, IommufdImportSpace space, DeviceImporters registry, int dmaBufFd,
                                  long size, Consumer<Importer> onInvalidate, Consumer<Importer> onRemap)
            throws KernelException {
        int iommufd = space.iommufd();
        int ioas = -1, fd = -1;
        String step = "IOMMU_IOAS_ALLOC";
        try {
            Integer id = space.ifOpen(sys::ioasAlloc);
            if (id == null) throw new KernelException(step, Errno.EBADF, "the backend is closed");
            ioas = id;
            step = "dup";
            fd = sys.dup(dmaBufFd);
        } catch (PosixException e) {
            if (ioas >= 0) destroyQuietly(sys, space, ioas);
            throw new KernelException(step, e.errno(), "attaching an iommufd importer");
        }
        IommufdImporter i = new IommufdImporter(sys, space, registry, iommufd, ioas, fd, size, onInvalidate, onRemap);
        registry.add(i);
        return i;
    }

    @Override
    public void map() throws KernelException {
        synchronized (this) {
            if (detached) throw new KernelException("IOMMU_IOAS_MAP_FILE", Errno.EINVAL, "detached");
            // the kernel's answer to a second map at the same IOVA
            if (wanted) throw new KernelException("IOMMU_IOAS_MAP_FILE", Errno.EEXIST, "already mapped at " + hex(IOVA));
            try {
                if (mapArea() == null) throw new KernelException("IOMMU_IOAS_MAP_FILE", Errno.EBADF, "the backend is closed");
            } catch (PosixException e) {
                throw new KernelException("IOMMU_IOAS_MAP_FILE", e.errno(), "dma-buf of " + size + " bytes at " + hex(IOVA));
            }
            wanted = true;
            live = true;
        }
    }

    @Override
    public void unmap() {
        synchronized (this) {
            if (!wanted) throw new IllegalStateException("unmap without map");
            wanted = false;
            live = false;
            unmapArea();
        }
    }

    /** Maps the buffer at the IOVA; null when the backend's iommufd is closed. */
    private Long mapArea() throws PosixException {
        Long at = space.ifOpen(ifd -> sys.ioasMapFile(ifd, ioas, fd, 0, size, IOVA, true));
        if (at != null) areaPresent = true;
        return at;
    }

    /** Removes the IOVA area, live or dead (a dead area still holds its IOVAs: a new MAP there is EEXIST). */
    private void unmapArea() {
        if (!areaPresent) return;
        areaPresent = false;
        try {
            space.ifOpen(ifd -> sys.ioasUnmap(ifd, ioas, IOVA, size));
        } catch (PosixException e) {
            LOG.warn("IOMMU_IOAS_UNMAP of " + hex(IOVA) + " in IOAS " + ioas + ": "
                    + Errno.describe(e.errno()));
        }
    }

    /** The exporter revoked the buffer: iommufd zapped the entries behind this mapping. */
    void revoked(boolean forGood) {
        synchronized (this) {
            if (detached) return;
            if (forGood) deviceGone = true;
            invalidations++;
            live = false;
        }
        onInvalidate.accept(this);
    }

    /** The exporter may have restored the buffer: map it again where it was, if the owner still wants it. */
    void restored() {
        synchronized (this) {
            if (detached || deviceGone || !wanted || live) return;
            unmapArea();
            try {
                if (mapArea() == null) return; // the backend is closed
            } catch (PosixException e) {
                // ENODEV: still revoked (memory decoding is off after the reset); the next restore tries again
                if (e.errno() != Errno.ENODEV.value) {
                    LOG.warn("remapping a restored dma-buf at " + hex(IOVA) + ": "
                            + Errno.describe(e.errno()));
                }
                return;
            }
            live = true;
            remaps++;
        }
        onRemap.accept(this);
    }

    @Override
    public synchronized int mapped() {
        return wanted ? 1 : 0;
    }

    @Override
    public synchronized int invalidations() {
        return invalidations;
    }

    @Override
    public synchronized int remaps() {
        return remaps;
    }

    @Override
    public boolean remapsOnRestore() {
        return true;
    }

    @Override
    public synchronized State state() {
        if (detached) return State.DETACHED;
        if (!wanted) return State.UNMAPPED;
        return live ? State.MAPPED : State.REVOKED;
    }

    @Override
    public synchronized long iova() {
        return wanted && areaPresent ? IOVA : -1;
    }

    /** The iommufd and the IO address space the buffer is mapped in, for attaching a device to it (lab tests). */
    int iommufd() {
        return iommufd;
    }

    int ioas() {
        return ioas;
    }

    @Override
    public void close() {
        synchronized (this) {
            if (detached) return;
            detached = true;
            unmapArea();
            wanted = false;
            live = false;
            destroyQuietly(sys, space, ioas);
            sys.closeQuietly(fd);
        }
        registry.remove(this);
    }

    private static void destroyQuietly(VfioSyscalls sys, IommufdImportSpace space, int ioas) {
        try {
            space.ifOpen(ifd -> {
                sys.iommuDestroy(ifd, ioas);
                return null;
            });
        } catch (PosixException e) {
            LOG.warn("IOMMU_DESTROY of IOAS " + ioas + ": " + Errno.describe(e.errno()));
        }
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    @Override
    public synchronized String toString() {
        return "iommufd importer (IOAS " + ioas + ", " + state() + ", " + size + " bytes at " + hex(IOVA) + ")";
    }
}

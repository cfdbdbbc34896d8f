package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * A dma-buf fd the kernel returned from {@code VFIO_DEVICE_FEATURE}; this object owns it and closes it once (an
 * atomic state, so a second close can never close a number the process has since reused).
 */
final class LinuxDmaBuf implements DmaBuf {
    private final VfioSyscalls sys;
    private final int fd;
    private final long size;
    private final IommufdImportSpace importSpace;
    private final DeviceImporters importers;
    private final AtomicBoolean closed = new AtomicBoolean();

    LinuxDmaBuf(VfioSyscalls sys, int fd, long size, IommufdImportSpace importSpace, DeviceImporters importers) {
        this.sys = sys;
        this.fd = fd;
        this.size = size;
        this.importSpace = importSpace;
        this.importers = importers;
    }

    /**
     * An iommufd importer of this buffer ({@link IommufdImporter}); nothing is mapped until {@link Importer#map()}.
     * The caller guarantees this reference is not closed concurrently, as for {@link #dup()}.
     */
    @Override
    public Importer attachImporter(Consumer<Importer> onInvalidate) throws KernelException {
        return attachImporter(onInvalidate, i -> {});
    }

    @Override
    public Importer attachImporter(Consumer<Importer> onInvalidate, Consumer<Importer> onRemap) throws KernelException {
        if (closed.get()) throw new KernelException("dup", Errno.EBADF, "the dma-buf is closed");
        return IommufdImporter.attach(sys, importSpace, importers, fd, size, onInvalidate, onRemap);
    }

    @Override
    public int fd() {
        return fd;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        try {
            sys.close(fd);
        } catch (PosixException e) {
            // EBADF would mean someone else closed our fd: a bug worth seeing, but close() must not throw
            org.slf4j.LoggerFactory.getLogger(LinuxDmaBuf.class).warn("close dma-buf fd {}: {}", fd, e.getMessage());
        }
    }

    /**
     * A close-on-exec duplicate the caller owns, or null when this buffer is closed. No free fd (EMFILE, ENFILE) is
     * an exception, never -1. The caller guarantees this reference is not closed concurrently (the device holds it
     * until release).
     */
    @Override
    public Fd dup() throws KernelException {
        if (closed.get()) return null;
        try {
            return Fd.adopt(sys.dup(fd), sys::close);
        } catch (PosixException e) {
            throw new KernelException("dup", e.errno(), "no fd to duplicate the dma-buf into");
        }
    }

    @Override
    public boolean isClosed() {
        return closed.get();
    }

    @Override
    public String toString() {
        return "dma-buf fd " + fd + " (" + size + " bytes)" + (closed.get() ? " closed" : "");
    }
}

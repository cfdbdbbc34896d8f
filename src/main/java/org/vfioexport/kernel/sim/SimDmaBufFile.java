package org.vfioexport.kernel.sim;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;

import java.util.function.Consumer;

/**
 * The fd the simulated ioctl returns: a real, sealed memfd of exactly the export's size, so {@code fstat},
 * {@code lseek(SEEK_END)} and SCM_RIGHTS behave as with a real dma-buf. Closing it is the caller's {@code fput}.
 */
final class SimDmaBufFile implements DmaBuf {
    private final SimDmaBuf buf;
    private final Fd fd;

    SimDmaBufFile(SimDmaBuf buf, int fd) {
        this.buf = buf;
        this.fd = Fd.adopt(fd);
    }

    SimDmaBuf kernelObject() {
        return buf;
    }

    @Override
    public int fd() {
        return fd.intValue();
    }

    @Override
    public long size() {
        return buf.size();
    }

    @Override
    public void close() {
        try {
            if (!fd.closeOnce()) return;
        } catch (PosixException e) {
            throw new IllegalStateException("closing dma-buf fd " + fd.intValue(), e);
        }
        buf.fput();
    }

    /** The caller guarantees this reference is not closed concurrently (the device holds it until release). */
    @Override
    public Fd dup() throws KernelException {
        try {
            return fd.dup();
        } catch (PosixException e) {
            throw new KernelException("dup", e.errno(), "no fd to duplicate the dma-buf into");
        }
    }

    @Override
    public Importer attachImporter(Consumer<Importer> onInvalidate) throws KernelException {
        if (fd.isClosed()) throw new KernelException("dma_buf_get", Errno.EBADF, "the exporter's fd is closed");
        return buf.attach(true, onInvalidate::accept);
    }

    @Override
    public boolean isClosed() {
        return fd.isClosed();
    }
}

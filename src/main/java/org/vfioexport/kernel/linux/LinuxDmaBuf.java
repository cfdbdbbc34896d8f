package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.KernelException;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A dma-buf fd the kernel returned from {@code VFIO_DEVICE_FEATURE}; this object owns it and closes it once (an
 * atomic state, so a second close can never close a number the process has since reused).
 */
final class LinuxDmaBuf implements DmaBuf {
    private final VfioSyscalls sys;
    private final int fd;
    private final long size;
    private final AtomicBoolean closed = new AtomicBoolean();

    LinuxDmaBuf(VfioSyscalls sys, int fd, long size) {
        this.sys = sys;
        this.fd = fd;
        this.size = size;
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
            System.getLogger(LinuxDmaBuf.class.getName()).log(System.Logger.Level.WARNING, "close dma-buf fd " + fd, e);
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

package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DmaBuf;

import java.util.concurrent.atomic.AtomicBoolean;

/** A dma-buf fd the kernel returned from {@code VFIO_DEVICE_FEATURE}; this object owns it and closes it once. */
final class LinuxDmaBuf implements DmaBuf {
    private final int fd;
    private final long size;
    private final AtomicBoolean closed = new AtomicBoolean();

    LinuxDmaBuf(int fd, long size) {
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
            Posix.close(fd);
        } catch (PosixException e) {
            // EBADF would mean someone else closed our fd: a bug worth seeing, but close() must not throw
            System.getLogger(LinuxDmaBuf.class.getName()).log(System.Logger.Level.WARNING, "close dma-buf fd " + fd, e);
        }
    }

    /** The caller guarantees this reference is not closed concurrently (the device holds it until release). */
    @Override
    public int dup() {
        if (closed.get()) return -1;
        try {
            return Posix.dup(fd);
        } catch (PosixException e) {
            return -1;     // EMFILE: no fd to spare; the caller reports the export as unsendable
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

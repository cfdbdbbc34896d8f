package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.OwnedFd;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.KernelException;

/** A dma-buf fd the kernel returned from {@code VFIO_DEVICE_FEATURE}; this object owns it and closes it once. */
final class LinuxDmaBuf implements DmaBuf {
    private final OwnedFd fd;
    private final long size;

    LinuxDmaBuf(int fd, long size) {
        this.fd = new OwnedFd(fd);
        this.size = size;
    }

    @Override
    public int fd() {
        return fd.fd();
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void close() {
        try {
            fd.closeOnce();
        } catch (PosixException e) {
            // EBADF would mean someone else closed our fd: a bug worth seeing, but close() must not throw
            System.getLogger(LinuxDmaBuf.class.getName()).log(System.Logger.Level.WARNING, "close dma-buf fd " + fd.fd(), e);
        }
    }

    /** The caller guarantees this reference is not closed concurrently (the device holds it until release). */
    @Override
    public int dup() throws KernelException {
        try {
            return fd.dup();
        } catch (PosixException e) {
            throw new KernelException("dup", e.errno(), "no fd to duplicate the dma-buf into");
        }
    }

    @Override
    public boolean isClosed() {
        return fd.isClosed();
    }

    @Override
    public String toString() {
        return "dma-buf fd " + fd.fd() + " (" + size + " bytes)" + (fd.isClosed() ? " closed" : "");
    }
}

package org.vfioexport.kernel.sim;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;

/**
 * The simulated dma-buf file: a memfd of exactly the buffer's size, sealed so nobody can resize it, with the
 * access mode and close-on-exec flag the request's open_flags ask for, as a real dma-buf fd has.
 */
public final class Memfd {
    private Memfd() {}

    /**
     * The sealed memfd, or the libc call's failure. Also what the Linux backend's fake kernel hands out as a
     * dma-buf fd, so that both model fds behave alike.
     */
    public static int open(String name, long size, int openFlags) throws PosixException {
        int fd = Posix.memfdCreate(name, Posix.MFD_CLOEXEC | Posix.MFD_ALLOW_SEALING);
        try {
            Posix.ftruncate(fd, size);
            Posix.fcntl(fd, Posix.F_ADD_SEALS, Posix.F_SEAL_SHRINK | Posix.F_SEAL_GROW | Posix.F_SEAL_SEAL);
            int accmode = openFlags & Posix.O_ACCMODE;
            if (accmode == Posix.O_RDONLY || accmode == Posix.O_WRONLY) {
                // reopen so the fd's access mode is the request's: dma_buf_getfile keeps O_ACCMODE of open_flags
                int reopened = Posix.open("/proc/self/fd/" + fd, accmode | Posix.O_CLOEXEC, 0);
                Posix.close(fd);
                fd = reopened;
            }
            // and the fd is close-on-exec only if open_flags asked for it (the kernel's fd allocation uses O_CLOEXEC)
            if ((openFlags & Posix.O_CLOEXEC) == 0) Posix.fcntl(fd, Posix.F_SETFD, 0);
            return fd;
        } catch (PosixException e) {
            try {
                Posix.close(fd);
            } catch (PosixException ignored) {
                // already failing; the fd is gone either way on Linux
            }
            throw e;
        }
    }

    /** {@link #open}, with the export's errno: EMFILE/ENFILE as they are (row 22), ENOMEM for the rest (row 21). */
    static int create(String name, long size, int openFlags) throws KernelException {
        try {
            return open(name, size, openFlags);
        } catch (PosixException e) {
            int errno = e.errno() == Errno.EMFILE.value || e.errno() == Errno.ENFILE.value ? e.errno() : Errno.ENOMEM.value;
            throw new KernelException(Ops.FEATURE_DMA_BUF, errno, e.op());
        }
    }
}

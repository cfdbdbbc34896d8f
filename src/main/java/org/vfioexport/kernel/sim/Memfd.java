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
final class Memfd {
    private Memfd() {}

    static int create(String name, long size, int openFlags) throws KernelException {
        int fd = -1;
        try {
            fd = Posix.memfdCreate(name, Posix.MFD_CLOEXEC | Posix.MFD_ALLOW_SEALING);
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
            if (fd >= 0) {
                try {
                    Posix.close(fd);
                } catch (PosixException ignored) {
                    // already failing; the fd is gone either way on Linux
                }
            }
            // EMFILE/ENFILE: no free fd (row 22); anything else: the export failed to allocate (row 21)
            int errno = e.errno() == Errno.EMFILE.value || e.errno() == Errno.ENFILE.value ? e.errno() : Errno.ENOMEM.value;
            throw new KernelException(Ops.FEATURE_DMA_BUF, errno, e.op());
        }
    }
}

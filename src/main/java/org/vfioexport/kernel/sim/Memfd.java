package org.vfioexport.kernel.sim;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;

/**
 * The simulated dma-buf file: a memfd of exactly the buffer's size, sealed so nobody can resize it, opened with
 * the access mode the request asked for (a dma-buf keeps O_ACCMODE of its open_flags).
 */
final class Memfd {
    private Memfd() {}

    static int create(String name, long size, int openFlags) throws KernelException {
        int fd = -1;
        try {
            fd = Posix.memfdCreate(name, Posix.MFD_CLOEXEC | Posix.MFD_ALLOW_SEALING);
            Posix.ftruncate(fd, size);
            Posix.fcntl(fd, Posix.F_ADD_SEALS, Posix.F_SEAL_SHRINK | Posix.F_SEAL_GROW | Posix.F_SEAL_SEAL);
            if ((openFlags & 3) == Posix.O_RDONLY) {
                // reopen read-only so the fd's access mode matches the request, as dma_buf_getfile does
                int ro = Posix.open("/proc/self/fd/" + fd, Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
                Posix.close(fd);
                fd = ro;
            }
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

package org.vfioexport.api;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

/**
 * One fd kept open on /dev/null for the day the process has no other: closing it frees exactly one slot, enough to
 * accept a pending connection and tell it why it cannot be served. Used only on the listener's event-loop thread.
 */
final class ReserveFd implements AutoCloseable {
    private static final String PATH = "/dev/null";

    private int fd = -1;

    /** Opens the reserve unless it is held; returns whether it is held now (false: still no fd to spare). */
    boolean restore() {
        if (fd >= 0) return true;
        try {
            fd = Posix.open(PATH, Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
        } catch (PosixException e) {
            fd = -1; // EMFILE/ENFILE: another slot must free up first
        }
        return fd >= 0;
    }

    /** Closes the reserve, freeing its slot; returns false if it was not held. */
    boolean release() {
        if (fd < 0) return false;
        int f = fd;
        fd = -1;
        try {
            Posix.close(f);
        } catch (PosixException e) {
            // EBADF only, a bug: the slot is not ours any more either way
        }
        return true;
    }

    boolean held() {
        return fd >= 0;
    }

    @Override
    public void close() {
        release();
    }
}

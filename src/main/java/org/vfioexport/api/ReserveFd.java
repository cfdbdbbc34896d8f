package org.vfioexport.api;

import org.vfioexport.ffm.posix.FileFd;
import org.vfioexport.ffm.posix.PosixException;

import java.nio.file.Path;

/**
 * One fd kept open on /dev/null for the day the process has no other: closing it frees exactly one slot, enough to
 * accept a pending connection and tell it why it cannot be served. Used only on the listener's event-loop thread.
 */
final class ReserveFd implements AutoCloseable {
    private static final Path PATH = Path.of("/dev/null");

    /** The reserve, or null while it is released. */
    private FileFd fd;

    /** Opens the reserve unless it is held; returns whether it is held now (false: still no fd to spare). */
    boolean restore() {
        if (fd != null) return true;
        try {
            fd = FileFd.open(PATH, FileFd.O_RDONLY, 0);
        } catch (PosixException e) {
            fd = null; // FdLimitException (EMFILE/ENFILE): another slot must free up first
        }
        return fd != null;
    }

    /** Closes the reserve, freeing its slot; returns false if it was not held. */
    boolean release() {
        if (fd == null) return false;
        FileFd f = fd;
        fd = null;
        FileFd.closeQuietly(f); // fails with EBADF only, a bug: the slot is not ours any more either way
        return true;
    }

    boolean held() {
        return fd != null;
    }

    @Override
    public void close() {
        release();
    }
}

package org.vfioexport.ffm.posix;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One fd with one owner, closed exactly once (an atomic state, as Netty's unix transport keeps it): a second
 * {@link #close()} does nothing, so it can never close a number the process has since reused.
 */
public final class OwnedFd implements AutoCloseable {
    private final int fd;
    private final AtomicBoolean closed = new AtomicBoolean();

    public OwnedFd(int fd) {
        this.fd = fd;
    }

    public int fd() {
        return fd;
    }

    public boolean isClosed() {
        return closed.get();
    }

    /**
     * A close-on-exec duplicate the caller owns, or -1 if this fd is closed. No free fd (EMFILE, ENFILE) is an
     * exception, never -1: a caller must not take "out of fds" for "already closed". The caller guarantees the fd
     * is not closed concurrently.
     */
    public int dup() throws PosixException {
        if (closed.get()) return -1;
        return Posix.dup(fd);
    }

    /** Closes the fd the first time; returns whether this call did. Closing cannot fail but for a bug (EBADF). */
    public boolean closeOnce() throws PosixException {
        if (!closed.compareAndSet(false, true)) return false;
        Posix.close(fd);
        return true;
    }

    @Override
    public void close() {
        try {
            closeOnce();
        } catch (PosixException e) {
            throw new IllegalStateException("closing fd " + fd, e);
        }
    }
}

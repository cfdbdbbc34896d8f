package org.vfioexport.ffm.posix;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * An open file descriptor with one owner, closed exactly once (Netty's unix transport keeps its fds the same way):
 * every call that makes an fd (open, dup, memfd, accept, recvmsg) returns one of these, and its number stays
 * inside {@code ffm} and {@code kernel.*}.
 *
 * <p>The state is one atomic word: a closed bit and the number of calls using the fd right now. {@link #close()}
 * sets the bit; the fd is closed by whoever leaves it at zero users, so a call in progress on another thread never
 * finds its number closed (and perhaps reused by an unrelated open) under it, and a second close does nothing.
 * A call on a closed {@code Fd} fails with {@link ClosedFdException} before it reaches the kernel.
 *
 * <p>A <em>borrowed</em> {@code Fd} ({@link #borrow}) names an fd that something else owns (a Netty channel's):
 * closing it only ends this view; the owner closes the number.
 */
public class Fd implements AutoCloseable {
    private static final int CLOSED = 1, USER = 2;

    /** How an owned number is closed. */
    @FunctionalInterface
    public interface Closer {
        void close(int fd) throws PosixException;
    }

    static final Closer CLOSE = Libc::close;

    private final int fd;
    /** null for a borrowed fd. */
    private final Closer closer;
    /** {@code users * USER | closed}. */
    private final AtomicInteger state = new AtomicInteger();

    Fd(int fd, Closer closer) {
        if (fd < 0) throw new IllegalArgumentException("not an fd: " + fd);
        this.fd = fd;
        this.closer = closer;
    }

    /**
     * Takes ownership of {@code fd}, a number a libc call just returned (in {@code ffm} and {@code kernel.*}, where
     * numbers come from): the returned object closes it.
     */
    public static Fd adopt(int fd) {
        return new Fd(fd, CLOSE);
    }

    /**
     * Takes ownership of {@code fd}, made through a seam of its own ({@code kernel.linux}'s syscalls, which tests
     * replace): the returned object closes it through {@code closer}, once.
     */
    public static Fd adopt(int fd, Closer closer) {
        return new Fd(fd, closer);
    }

    /** A view of {@code fd}, owned elsewhere: closing the view does not close the number. */
    public static Fd borrow(int fd) {
        return new Fd(fd, null);
    }

    /**
     * The number, for code that hands it to the kernel itself ({@code kernel.*}, a Netty channel) or shows it to
     * people. Valid until {@link #close()}; never close it behind this object's back.
     */
    public final int intValue() {
        return fd;
    }

    public final boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /** Whether closing this object closes the number (false for a {@link #borrow borrowed} view). */
    public final boolean isOwned() {
        return closer != null;
    }

    /** One call that uses the number while this object keeps it open. */
    @FunctionalInterface
    protected interface Call<T> {
        T on(int fd) throws PosixException;
    }

    /**
     * Runs {@code call} on the number, holding the fd open for its duration; EBADF ({@link ClosedFdException})
     * without calling when this {@code Fd} is already closed.
     */
    protected final <T> T use(String op, Call<T> call) throws PosixException {
        if (!acquire()) throw new ClosedFdException(op);
        try {
            return call.on(fd);
        } finally {
            release();
        }
    }

    private boolean acquire() {
        while (true) {
            int s = state.get();
            if ((s & CLOSED) != 0) return false;
            if (state.compareAndSet(s, s + USER)) return true;
        }
    }

    private void release() throws PosixException {
        if (state.addAndGet(-USER) == CLOSED) closeNumber(); // the last user of a closed fd closes it
    }

    private void closeNumber() throws PosixException {
        if (closer != null) closer.close(fd);
    }

    /**
     * A close-on-exec duplicate the caller owns, or null if this fd is closed. No free fd is an
     * {@link FdLimitException}, never null: a caller must not take "out of fds" for "already closed".
     */
    public Fd dup() throws PosixException {
        if (!acquire()) return null;
        try {
            return adopt(Libc.fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0));
        } finally {
            release();
        }
    }

    /** The size of the file (its end, by {@code lseek(SEEK_END)}; the offset moves there). */
    public long size() throws PosixException {
        return use("lseek", n -> Libc.lseek(n, 0, Libc.SEEK_END));
    }

    /** Whether the fd is close-on-exec (FD_CLOEXEC), as every fd this project makes should be. */
    public boolean isCloseOnExec() throws PosixException {
        return use("fcntl(F_GETFD)", n -> (Libc.fcntl(n, Libc.F_GETFD, 0) & Libc.FD_CLOEXEC) != 0);
    }

    /** Sets FD_CLOEXEC, for an fd inherited without it (socket activation). */
    public void setCloseOnExec() throws PosixException {
        use("fcntl(F_SETFD)", n -> Libc.fcntl(n, Libc.F_SETFD, Libc.FD_CLOEXEC));
    }

    /**
     * Closes the fd the first time (at once, or when the last call using it returns); returns whether this call was
     * the first. Closing fails only for a bug (EBADF: the number was closed behind this object's back).
     */
    public final boolean closeOnce() throws PosixException {
        while (true) {
            int s = state.get();
            if ((s & CLOSED) != 0) return false;
            if (state.compareAndSet(s, s | CLOSED)) {
                if (s == 0) closeNumber();
                return true;
            }
        }
    }

    /** {@link #closeOnce()}; a failure to close is a bug, thrown unchecked. */
    @Override
    public final void close() {
        try {
            closeOnce();
        } catch (PosixException e) {
            throw new IllegalStateException("closing fd " + fd, e);
        }
    }

    /** Closes each of {@code fds} (null entries skipped), ignoring failures: for cleanup on a path already failing. */
    public static void closeQuietly(Fd... fds) {
        for (Fd f : fds) {
            if (f == null) continue;
            try {
                f.closeOnce();
            } catch (PosixException | RuntimeException ignored) {
                // closing is all that can be done with it
            }
        }
    }

    /** Closes each of {@code fds}, ignoring failures. */
    public static void closeQuietly(Iterable<? extends Fd> fds) {
        for (Fd f : fds) closeQuietly(f);
    }

    @Override
    public String toString() {
        return "fd " + fd + (isClosed() ? " (closed)" : "");
    }
}

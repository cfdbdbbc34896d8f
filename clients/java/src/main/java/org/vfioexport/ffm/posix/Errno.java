package org.vfioexport.ffm.posix;

import java.util.HashMap;
import java.util.Map;

/**
 * Linux errno values ({@code asm-generic/errno-base.h} and {@code asm-generic/errno.h}, as on x86-64 and aarch64)
 * with their names: the one table of the project, daemon and client alike. Code that acts on an errno compares with
 * {@link #value} or catches the typed exception {@link #exception} makes of it; messages name it with
 * {@link #describe(int)}, e.g. {@code EINVAL (errno 22)}. The layout test checks every value against the header.
 * {@code EWOULDBLOCK} is {@link #EAGAIN} on Linux.
 *
 * <p>Two values never become exceptions: {@link #EINTR} is retried where it happens and {@link #EAGAIN} is "not now"
 * (a call that can meet it says so in its result).
 */
public enum Errno {
    EPERM(1), ENOENT(2), EINTR(4), EIO(5), ENXIO(6), EBADF(9), EAGAIN(11), ENOMEM(12), EACCES(13), EFAULT(14),
    EBUSY(16), EEXIST(17), ENODEV(19), ENOTDIR(20), EISDIR(21), EINVAL(22), ENFILE(23), EMFILE(24), ENOTTY(25), ENOSPC(28),
    EPIPE(32), ERANGE(34), ENAMETOOLONG(36), ENOSYS(38), ELOOP(40), EOVERFLOW(75), ENOTSOCK(88), EMSGSIZE(90),
    EOPNOTSUPP(95), ECONNRESET(104), ETOOMANYREFS(109), ETIMEDOUT(110), ECONNREFUSED(111);

    private static final Map<Integer, Errno> BY_VALUE = new HashMap<>();

    static {
        for (Errno e : values()) BY_VALUE.put(e.value, e);
    }

    public final int value;

    Errno(int value) {
        this.value = value;
    }

    /** True when {@code errno} is this value. */
    public boolean is(int errno) {
        return errno == value;
    }

    /** The name of {@code errno}, or {@code E<number>} for a value this table does not list. */
    public static String nameOf(int errno) {
        Errno e = BY_VALUE.get(errno);
        return e != null ? e.name() : "E" + errno;
    }

    /** {@code errno} as people look it up, name and number: {@code EINVAL (errno 22)}. */
    public static String describe(int errno) {
        return nameOf(errno) + " (errno " + errno + ")";
    }

    /**
     * The exception a failed {@code op} with {@code errno} is: {@link ClosedFdException} for EBADF (the fd was
     * closed, a bug of ownership), {@link FdLimitException} for EMFILE and ENFILE (no fd to spare, a resource
     * shortage to report, not a bug), {@link PeerClosedException} for EPIPE and ECONNRESET (the other end of a
     * socket went away), a plain {@link PosixException} for the rest.
     */
    public static PosixException exception(String op, int errno) {
        Errno e = of(errno);
        if (e == null) return new PosixException(op, errno);
        return switch (e) {
            case EBADF -> new ClosedFdException(op);
            case EMFILE, ENFILE -> new FdLimitException(op, errno);
            case EPIPE, ECONNRESET -> new PeerClosedException(op, errno);
            default -> new PosixException(op, errno);
        };
    }

    /** The entry for {@code errno}, or null for a value this table does not list. */
    public static Errno of(int errno) {
        return BY_VALUE.get(errno);
    }
}

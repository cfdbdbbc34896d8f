package org.vfioexport.ffm.posix;

import java.util.HashMap;
import java.util.Map;

/**
 * Linux errno values ({@code asm-generic/errno-base.h} and {@code asm-generic/errno.h}, as on x86-64 and aarch64)
 * with their names: the one table of the project. Code that acts on an errno compares with {@link #value}; messages
 * name it with {@link #describe(int)}, e.g. {@code EINVAL (22)}. The layout test checks every value against the
 * header. {@code EWOULDBLOCK} is {@link #EAGAIN} on Linux.
 */
public enum Errno {
    EPERM(1), ENOENT(2), EINTR(4), EIO(5), ENXIO(6), EBADF(9), EAGAIN(11), ENOMEM(12), EACCES(13), EFAULT(14),
    EBUSY(16), EEXIST(17), ENODEV(19), EISDIR(21), EINVAL(22), ENFILE(23), EMFILE(24), ENOTTY(25), ENOSPC(28),
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

    /** {@code errno} as people look it up, name and number: {@code EINVAL (22)}. */
    public static String describe(int errno) {
        return nameOf(errno) + " (" + errno + ")";
    }

    /** The entry for {@code errno}, or null for a value this table does not list. */
    public static Errno of(int errno) {
        return BY_VALUE.get(errno);
    }
}

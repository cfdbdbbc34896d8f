package org.vfioexport.ffm.posix;

import java.io.IOException;

/**
 * A failed libc call: the function and the errno it set, as data; the message names it
 * ({@code open(/x) failed: ENOENT (errno 2)}). The calls throw what {@link Errno#exception} makes of the errno, so a
 * caller can catch the cases it handles by type ({@link ClosedFdException}, {@link FdLimitException},
 * {@link PeerClosedException}) and the rest as this class.
 */
public class PosixException extends IOException {
    private final String op;
    private final int errno;

    public PosixException(String op, int errno) {
        super(op + " failed: " + Errno.describe(errno));
        this.op = op;
        this.errno = errno;
    }

    public String op() {
        return op;
    }

    public int errno() {
        return errno;
    }

    /** The errno's entry in the table, or null for a value it does not list. */
    public Errno errnoValue() {
        return Errno.of(errno);
    }

    /** True when the errno is {@code e}. */
    public boolean is(Errno e) {
        return e.value == errno;
    }

    /** The errno by name and number, e.g. {@code EINVAL (errno 22)}. */
    public String errnoDescription() {
        return Errno.describe(errno);
    }

    /** The errno's name, e.g. {@code EINVAL}. */
    public String errnoName() {
        return Errno.nameOf(errno);
    }
}

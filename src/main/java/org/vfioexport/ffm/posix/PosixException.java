package org.vfioexport.ffm.posix;

import java.io.IOException;

/** A failed libc call: the function and the errno it set, as data; the message names it ({@code EINVAL (22)}). */
public final class PosixException extends IOException {
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

    /** The errno's name, e.g. {@code EINVAL}. */
    public String errnoName() {
        return Errno.nameOf(errno);
    }
}

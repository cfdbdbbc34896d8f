package org.vfioexport.ffm.posix;

import java.io.IOException;

/** A failed libc call: the function and the errno it set, as data. */
public final class PosixException extends IOException {
    private final String op;
    private final int errno;

    public PosixException(String op, int errno) {
        super(op + " failed: errno " + errno);
        this.op = op;
        this.errno = errno;
    }

    public String op() {
        return op;
    }

    public int errno() {
        return errno;
    }
}

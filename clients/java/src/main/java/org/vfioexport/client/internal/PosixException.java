package org.vfioexport.client.internal;

import java.io.IOException;

/** A failed libc call of the client: the function and the errno it set, as data. */
public final class PosixException extends IOException {
    private final int errno;

    public PosixException(String op, int errno) {
        super(op + " failed: " + Errno.describe(errno));
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}

package org.vfioexport.ffm.posix;

/**
 * EBADF: the call was given an fd that is not open. With every fd owned by one {@link Fd} this is a bug of
 * ownership (a close by someone else, a use after close), never a condition to handle.
 */
public final class ClosedFdException extends PosixException {
    public ClosedFdException(String op) {
        super(op, Errno.EBADF.value);
    }
}

package org.vfioexport.ffm.posix;

/**
 * EMFILE (this process is at RLIMIT_NOFILE) or ENFILE (the system-wide file table is full): a new fd could not be
 * made. A shortage to report and recover from, not a bug.
 */
public final class FdLimitException extends PosixException {
    public FdLimitException(String op, int errno) {
        super(op, errno);
    }
}

package org.vfioexport.ffm.posix;

/** EPIPE or ECONNRESET: the other end of a socket has gone away; nothing more can be sent on it. */
public final class PeerClosedException extends PosixException {
    public PeerClosedException(String op, int errno) {
        super(op, errno);
    }
}

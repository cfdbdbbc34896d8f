package org.vfioexport.api;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;

/**
 * One client connection as {@link FdWriter} sees it: a socket that takes a line with fds in one non-blocking send,
 * and the transport's own outbound buffer that such a send must never overtake. {@link EpollChannels} makes it of
 * a Netty epoll channel; nothing here names Netty or an fd number.
 */
interface FdSink {
    /**
     * One non-blocking send of {@code line} with {@code fds} on its first byte: the bytes sent, or -1 when the
     * socket has no room now and nothing was sent. The kernel takes its own references to the fds.
     */
    long sendWithFds(byte[] line, Fd[] fds) throws PosixException;

    /** The bytes sent that the peer has not read yet (0: it has received every fd sent so far). */
    int unreadByPeer() throws PosixException;

    /** False once the transport has closed the connection (its outbound buffer is gone). */
    boolean isOpen();

    /** Hands what the transport holds unflushed to its outbound buffer (so {@link #transportEmpty} sees it). */
    void flush();

    /** True when the transport's outbound buffer holds no message (flushed or closed). */
    boolean transportEmpty();

    /** Bytes the transport holds and has not yet handed to the kernel. */
    long transportPendingBytes();

    /** Half-closes the connection (the peer reads what was sent, then EOF); false if it is not open. */
    boolean shutdownOutput();
}

package org.vfioexport.client;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.UnixSocket;

import java.io.IOException;
import java.util.ArrayDeque;

/**
 * The connected stream socket under a {@link VfioExportClient}: bytes in both directions, bounded waits, and the
 * fds that ride on received bytes where the transport can take them.
 */
interface Transport extends AutoCloseable {
    /**
     * One read of up to {@code into.length} bytes: the count, 0 at end of stream, or -1 when nothing was there after
     * all. Fds that came with the bytes are appended to {@code fds} in order.
     */
    int receive(byte[] into, ArrayDeque<Fd> fds) throws IOException;

    /** One write of up to {@code len} bytes from {@code off}: the count sent, 0 when the socket has no room now. */
    int send(byte[] data, int off, int len) throws IOException;

    /** Waits until the socket is readable (or writable): false when {@code ms} passed first. */
    boolean await(boolean write, long ms) throws IOException;

    /** Whether fds sent by the server reach this side; without it the kernel drops them at the read. */
    boolean passesFds();

    /** The socket, or null where the JDK keeps it. */
    UnixSocket socket();

    @Override
    void close();
}

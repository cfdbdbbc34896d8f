package org.vfioexport.client;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.UnixSocket;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;

/** A socket driven through libc ({@link UnixSocket}): {@code recvmsg} with room for SCM_RIGHTS, so fds sent by the server arrive. */
final class PosixTransport implements Transport {
    private final UnixSocket sock;

    private PosixTransport(UnixSocket sock) {
        this.sock = sock;
    }

    static PosixTransport connect(Path socket) throws IOException {
        try {
            return new PosixTransport(UnixSocket.connect(socket));
        } catch (PosixException e) {
            throw new ConnectFailedException(socket, e.errno(), e);
        }
    }

    @Override
    public int receive(byte[] into, ArrayDeque<Fd> fds) throws IOException {
        UnixSocket.Received r = sock.recvWithFds(into, UnixSocket.MAX_FDS_PER_MESSAGE);
        for (Fd fd : r.fds()) fds.add(fd);
        return r.length();
    }

    @Override
    public int send(byte[] data, int off, int len) throws IOException {
        long n = sock.send(data, off, len, false);
        return n < 0 ? 0 : (int) n; // a blocking socket says EAGAIN only with a send timeout: the caller waits for room
    }

    @Override
    public boolean await(boolean write, long ms) throws IOException {
        return sock.poll(write ? UnixSocket.POLLOUT : UnixSocket.POLLIN, (int) Math.min(Integer.MAX_VALUE, ms)) != 0;
    }

    @Override
    public boolean passesFds() {
        return true;
    }

    @Override
    public UnixSocket socket() {
        return sock;
    }

    @Override
    public void close() {
        Fd.closeQuietly(sock);
    }
}

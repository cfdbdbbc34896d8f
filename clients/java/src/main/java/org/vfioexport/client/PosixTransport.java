package org.vfioexport.client;

import org.vfioexport.client.internal.Errno;
import org.vfioexport.client.internal.Posix;
import org.vfioexport.client.internal.PosixException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;

/** A socket driven through libc: {@code recvmsg} with room for SCM_RIGHTS, so fds sent by the server arrive. */
final class PosixTransport implements Transport {
    /** SCM_MAX_FD: the most fds one sendmsg can carry. */
    private static final int MAX_FDS_PER_READ = 253;

    private final int sock;

    private PosixTransport(int sock) {
        this.sock = sock;
    }

    static PosixTransport connect(Path socket) throws IOException {
        try {
            return new PosixTransport(Posix.connectUnix(socket.toString()));
        } catch (PosixException e) {
            throw new ConnectFailedException(socket, e.errno(), e);
        }
    }

    @Override
    public int receive(byte[] into, ArrayDeque<Integer> fds) throws IOException {
        Posix.Received r;
        try {
            r = Posix.recvWithFds(sock, into, MAX_FDS_PER_READ);
        } catch (PosixException e) {
            throw new IOException("recvmsg failed: " + Errno.describe(e.errno()), e);
        }
        for (int fd : r.fds()) fds.add(fd);
        return r.length();
    }

    @Override
    public int send(byte[] data, int off, int len) throws IOException {
        long n;
        try {
            n = Posix.sendWithFds(sock, data, off, len, new int[0], 0);
        } catch (PosixException e) {
            throw new IOException("send failed: " + Errno.describe(e.errno()), e);
        }
        return n < 0 ? 0 : (int) n; // a blocking socket says EAGAIN only with a send timeout: the caller waits for room
    }

    @Override
    public boolean await(boolean write, long ms) throws IOException {
        try {
            return Posix.poll(sock, write ? Posix.POLLOUT : Posix.POLLIN, (int) Math.min(Integer.MAX_VALUE, ms)) != 0;
        } catch (PosixException e) {
            throw new IOException("poll failed: " + Errno.describe(e.errno()), e);
        }
    }

    @Override
    public boolean passesFds() {
        return true;
    }

    @Override
    public int fd() {
        return sock;
    }

    @Override
    public void close() {
        VfioExportClient.closeQuietly(sock);
    }
}

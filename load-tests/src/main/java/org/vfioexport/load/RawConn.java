package org.vfioexport.load;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A raw client connection for the adversarial scenarios: sends arbitrary bytes (never blocking longer than asked),
 * reads lines only when told to (so it can leave everything unread), and says exactly how the stream ended
 * (end of file, connection reset, or still open). Fds that arrive are closed at once and counted.
 */
final class RawConn implements AutoCloseable {
    static final int ECONNRESET = 104, EPIPE = 32;

    final int fd;
    private final byte[] rx = new byte[1 << 16];
    private byte[] buf = new byte[1 << 16];
    private int len;
    private boolean eof;
    private int resetErrno;
    private boolean closed;
    long fdsReceived;
    long bytesSent;

    private RawConn(int fd) {
        this.fd = fd;
    }

    static RawConn connect(Path socket) throws IOException {
        try {
            return new RawConn(Posix.connectUnix(socket.toString()));
        } catch (PosixException e) {
            throw new IOException("connect " + socket + ": errno " + e.errno(), e);
        }
    }

    /** How a read ended: a line, the peer's end of file, a reset (ECONNRESET), or nothing within the time. */
    enum End { LINE, EOF, RESET, TIMEOUT }

    // ---- sending ---------------------------------------------------------------------------------------------

    /**
     * Sends what fits without blocking: the bytes sent (0 when the socket buffer is full). Throws when the peer is
     * gone (EPIPE, ECONNRESET).
     */
    int trySend(byte[] b, int off, int n) throws IOException {
        long k;
        try {
            k = Posix.sendWithFds(fd, b, off, n, new int[0], Posix.MSG_DONTWAIT);
        } catch (PosixException e) {
            throw new PeerGone(e.errno());
        }
        if (k < 0) return 0;
        bytesSent += k;
        return (int) k;
    }

    /** Sends all of {@code b} unless the socket stays full for {@code timeoutMs}: the bytes sent. */
    int send(byte[] b, long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        int off = 0;
        while (off < b.length) {
            int k = trySend(b, off, b.length - off);
            off += k;
            if (off == b.length) break;
            if (k == 0) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) break;
                poll(Posix.POLLOUT, (int) Math.min(left, 100));
            }
        }
        return off;
    }

    int send(String s, long timeoutMs) throws IOException {
        return send(s.getBytes(StandardCharsets.UTF_8), timeoutMs);
    }

    /** Sending failed because the peer closed or reset the connection. */
    static final class PeerGone extends IOException {
        final int errno;

        PeerGone(int errno) {
            super("the daemon closed the connection (errno " + errno + ")");
            this.errno = errno;
        }
    }

    // ---- receiving -------------------------------------------------------------------------------------------

    /** The next line (without its newline), or null with {@link #lastEnd()} telling why there is none. */
    String readLine(long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            for (int i = 0; i < len; i++) {
                if (buf[i] != '\n') continue;
                String line = new String(buf, 0, i, StandardCharsets.UTF_8);
                System.arraycopy(buf, i + 1, buf, 0, len - i - 1);
                len -= i + 1;
                lastEnd = End.LINE;
                return line;
            }
            if (eof || resetErrno != 0) {
                lastEnd = eof ? End.EOF : End.RESET;
                return null;
            }
            long left = Math.max(0, (deadline - System.nanoTime()) / 1_000_000);
            if (poll(Posix.POLLIN, (int) Math.min(Integer.MAX_VALUE, left)) == 0) {
                lastEnd = End.TIMEOUT;
                return null;
            }
            fill();
        }
    }

    private End lastEnd = End.LINE;

    End lastEnd() {
        return lastEnd;
    }

    /** Reads (and drops) everything until the stream ends or {@code timeoutMs} passes: the lines read, and how. */
    Drained drain(long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        List<String> lines = new ArrayList<>();
        long count = 0;
        while (true) {
            long left = Math.max(0, (deadline - System.nanoTime()) / 1_000_000);
            String l = readLine(left);
            if (l == null) return new Drained(count, lines, lastEnd);
            count++;
            if (lines.size() < 16) lines.add(l);
        }
    }

    /** What {@link #drain} saw: the number of lines, the first few, and how the stream ended. */
    record Drained(long lines, List<String> first, End end) {}

    private int poll(short events, int ms) throws IOException {
        try {
            return Posix.poll(fd, events, ms);
        } catch (PosixException e) {
            throw new IOException("poll: errno " + e.errno(), e);
        }
    }

    private void fill() throws IOException {
        Posix.Received r;
        try {
            r = Posix.recvWithFds(fd, rx, 253);
        } catch (PosixException e) {
            if (e.errno() == ECONNRESET) {
                resetErrno = e.errno();
                return;
            }
            throw new IOException("recvmsg: errno " + e.errno(), e);
        }
        for (int f : r.fds()) {
            fdsReceived++;
            closeQuietly(f);
        }
        if (r.length() == 0) {
            eof = true;
            return;
        }
        if (len + r.length() > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + r.length()));
        System.arraycopy(rx, 0, buf, len, r.length());
        len += r.length();
    }

    private static void closeQuietly(int fd) {
        try {
            Posix.close(fd);
        } catch (PosixException ignored) {
            // nothing more to do with it
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        closeQuietly(fd);
    }
}

package org.vfioexport.client;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.UnixSocket;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A real server on a real Unix socket, speaking the protocol's framing (NDJSON, fds by SCM_RIGHTS on the line that
 * names them) for one connection: it greets, then answers each request line with what {@code answer} returns,
 * sending the fds it lists with that line. The client library is tested against it, on its own, without a daemon.
 */
final class TinyServer implements AutoCloseable {
    /** One line to send and the fds that ride on it. */
    record Reply(String line, Fd[] fds) {
        static Reply of(String line) {
            return new Reply(line, new Fd[0]);
        }
    }

    private static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 02000000, MFD_CLOEXEC = 1;
    private static final Linker L = Linker.nativeLinker();
    private static final MethodHandle SOCKET = h("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = h("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = h("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT = h("accept", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle MEMFD = h("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle WRITE = h("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));

    private static MethodHandle h(String name, FunctionDescriptor fd) {
        return L.downcallHandle(L.defaultLookup().find(name).orElseThrow(), fd);
    }

    private final Fd listening;
    private final Thread thread;
    final List<String> received = new java.util.concurrent.CopyOnWriteArrayList<>();
    volatile Throwable failure;

    /** Listens on {@code path}; the connection's requests are answered by {@code answer} (null: close it). */
    TinyServer(Path path, String hello, Function<Map<String, Object>, List<Reply>> answer) throws Throwable {
        int listenFd = (int) SOCKET.invokeExact(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        listening = Fd.adopt(listenFd);
        try (Arena a = Arena.ofConfined()) {
            byte[] p = path.toString().getBytes(StandardCharsets.UTF_8);
            MemorySegment addr = a.allocate(110, 2);
            addr.set(JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(p, 0, addr, JAVA_BYTE, 2, p.length);
            if ((int) BIND.invokeExact(listenFd, addr, 110) != 0) throw new IllegalStateException("bind " + path);
        }
        if ((int) LISTEN.invokeExact(listenFd, 4) != 0) throw new IllegalStateException("listen");
        thread = Thread.ofPlatform().daemon().start(() -> {
            try {
                serve(hello, answer);
            } catch (Throwable t) {
                failure = t;
            }
        });
    }

    private void serve(String hello, Function<Map<String, Object>, List<Reply>> answer) throws Throwable {
        int accepted = (int) ACCEPT.invokeExact(listening.intValue(), MemorySegment.NULL, MemorySegment.NULL);
        if (accepted < 0) throw new IllegalStateException("accept");
        try (UnixSocket conn = UnixSocket.adoptSocket(accepted)) {
            send(conn, Reply.of(hello));
            StringBuilder pending = new StringBuilder();
            byte[] buf = new byte[4096];
            while (true) {
                int nl;
                while ((nl = pending.indexOf("\n")) < 0) {
                    UnixSocket.Received r = conn.recvWithFds(buf, 1);
                    Fd.closeQuietly(r.fds());
                    if (r.length() == 0) return;
                    pending.append(new String(buf, 0, r.length(), StandardCharsets.UTF_8));
                }
                String line = pending.substring(0, nl);
                pending.delete(0, nl + 1);
                received.add(line);
                List<Reply> replies = answer.apply(JsonText.parseObject(line));
                if (replies == null) return;
                for (Reply reply : replies) send(conn, reply);
            }
        }
    }

    private static void send(UnixSocket conn, Reply r) throws Exception {
        byte[] b = (r.line() + "\n").getBytes(StandardCharsets.UTF_8);
        int off = 0;
        while (off < b.length) {
            long n = conn.sendWithFds(b, off, b.length - off, false, off == 0 ? r.fds() : new Fd[0]);
            off += (int) Math.max(0, n);
        }
    }

    /** A memfd holding {@code content}: what the server hands out in place of a dma-buf. */
    static Fd memfd(String content) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            int fd = (int) MEMFD.invokeExact(a.allocateFrom("tiny-server"), MFD_CLOEXEC);
            if (fd < 0) throw new IllegalStateException("memfd_create");
            byte[] c = content.getBytes(StandardCharsets.UTF_8);
            MemorySegment s = a.allocate(c.length);
            MemorySegment.copy(c, 0, s, JAVA_BYTE, 0, c.length);
            if ((long) WRITE.invokeExact(fd, s, (long) c.length) != c.length) throw new IllegalStateException("write");
            return Fd.adopt(fd);
        }
    }

    /** Waits for the connection to end (bounded) and rethrows what went wrong in the server, if anything. */
    void finish(long ms) throws Throwable {
        thread.join(ms);
        if (thread.isAlive()) throw new AssertionError("the server's connection did not end within " + ms + " ms");
        if (failure != null) throw failure;
    }

    @Override
    public void close() throws Exception {
        listening.close();
    }

    static List<Reply> one(String line) {
        List<Reply> l = new ArrayList<>();
        l.add(Reply.of(line));
        return l;
    }
}

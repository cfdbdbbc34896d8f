package org.vfioexport.client.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The libc calls a client needs to receive fds (glibc, LP64: x86-64 and aarch64): a connected AF_UNIX stream
 * socket, sendmsg/recvmsg with SCM_RIGHTS, poll and close. The daemon has its own, larger set; this one is the
 * client's so that the client library carries no daemon code.
 *
 * <p>Each call captures {@code errno} in the same native call, so no later JVM activity can overwrite it, and
 * turns a failure into a {@link PosixException} here at the boundary. Not part of the client's API.
 */
public final class Posix {
    private Posix() {}

    public static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 02000000;
    public static final int SOL_SOCKET = 1, SCM_RIGHTS = 1;
    public static final int MSG_NOSIGNAL = 0x4000, MSG_DONTWAIT = 0x40, MSG_CTRUNC = 0x8, MSG_CMSG_CLOEXEC = 0x40000000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_OPT = Linker.Option.captureCallState("errno");

    private static MethodHandle fn(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, ERRNO_OPT);
    }

    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle SOCKET = fn("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT = fn("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = fn("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG = fn("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle POLL = fn("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    private static MemorySegment captureState(Arena a) {
        return a.allocate(CAPTURE);
    }

    private static int check(int rc, MemorySegment state, String op) throws PosixException {
        if (rc < 0) throw new PosixException(op, errno(state));
        return rc;
    }

    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** close(2). EINTR still closes the fd on Linux, so it is not retried. */
    public static void close(int fd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) CLOSE.invokeExact(st, fd);
            if (rc < 0 && errno(st) != Errno.EINTR) throw new PosixException("close", errno(st));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** struct sockaddr_un: sun_family u16 @0, sun_path[108] @2. */
    private static final long SOCKADDR_UN_SIZE = 110;

    /** A connected AF_UNIX stream socket (blocking, close-on-exec). */
    public static int connectUnix(String path) throws PosixException {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        if (p.length >= 108) throw new PosixException("connect(" + path + ")", Errno.ENAMETOOLONG);
        int fd;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            fd = check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st, "socket");
            MemorySegment addr = a.allocate(SOCKADDR_UN_SIZE, 2);
            addr.set(java.lang.foreign.ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(p, 0, addr, JAVA_BYTE, 2, p.length);
            int rc = (int) CONNECT.invokeExact(st, fd, addr, (int) SOCKADDR_UN_SIZE);
            if (rc < 0) {
                int e = errno(st);
                close(fd);
                throw new PosixException("connect(" + path + ")", e);
            }
            return fd;
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    // struct msghdr (56 bytes): name@0 namelen@8 iov@16 iovlen@24 control@32 controllen@40 flags@48
    // struct iovec (16): base@0 len@8; struct cmsghdr: len@0 (size_t) level@8 type@12 data@16
    private static long cmsgSpace(long n) {
        return 16 + ((n + 7) & ~7L);
    }

    /**
     * One sendmsg(2) of {@code len} bytes of {@code data} from {@code offset} with {@code fds} as SCM_RIGHTS on
     * its first byte. Returns the bytes sent, or -1 when the socket would block (EAGAIN) and nothing was sent.
     */
    public static long sendWithFds(int sock, byte[] data, int offset, int len, int[] fds, int flags) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment buf = a.allocate(Math.max(1, len));
            MemorySegment.copy(data, offset, buf, JAVA_BYTE, 0, len);
            MemorySegment iov = a.allocate(16, 8);
            iov.set(ADDRESS, 0, buf);
            iov.set(JAVA_LONG, 8, len);
            MemorySegment msg = a.allocate(56, 8);
            msg.set(ADDRESS, 16, iov);
            msg.set(JAVA_LONG, 24, 1);
            if (fds.length > 0) {
                long space = cmsgSpace(4L * fds.length);
                MemorySegment ctl = a.allocate(space, 8);
                ctl.set(JAVA_LONG, 0, 16 + 4L * fds.length);
                ctl.set(JAVA_INT, 8, SOL_SOCKET);
                ctl.set(JAVA_INT, 12, SCM_RIGHTS);
                for (int i = 0; i < fds.length; i++) ctl.set(JAVA_INT, 16 + 4L * i, fds[i]);
                msg.set(ADDRESS, 32, ctl);
                msg.set(JAVA_LONG, 40, space);
            }
            while (true) {
                long n = (long) SENDMSG.invokeExact(st, sock, msg, flags | MSG_NOSIGNAL);
                if (n >= 0) return n;
                int e = errno(st);
                if (e == Errno.EINTR) continue;
                if (e == Errno.EAGAIN) return -1;
                throw new PosixException("sendmsg", e);
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * A per-thread native receive buffer of at least {@code size} bytes. Reused across calls: allocating (and
     * zeroing) 64 KiB of native memory for every read costs more than the read itself.
     */
    private static MemorySegment receiveBuffer(int size) {
        MemorySegment b = RECEIVE_BUFFER.get();
        if (b == null || b.byteSize() < size) {
            b = Arena.ofAuto().allocate(Math.max(size, 4096));
            RECEIVE_BUFFER.set(b);
        }
        return b;
    }

    private static final ThreadLocal<MemorySegment> RECEIVE_BUFFER = new ThreadLocal<>();

    /** What one recvmsg(2) returned: the bytes read (0 at end of stream) and the fds that came with them. */
    public record Received(int length, int[] fds) {}

    /**
     * One recvmsg(2) into {@code into} (up to its length) with room for {@code maxFds} fds, received close-on-exec.
     * Fds cut off by a too-small control buffer are a protocol error: they are lost, so this throws.
     */
    public static Received recvWithFds(int sock, byte[] into, int maxFds) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment buf = receiveBuffer(into.length);
            MemorySegment iov = a.allocate(16, 8);
            iov.set(ADDRESS, 0, buf);
            iov.set(JAVA_LONG, 8, into.length);
            long space = cmsgSpace(4L * maxFds);
            MemorySegment ctl = a.allocate(space, 8);
            MemorySegment msg = a.allocate(56, 8);
            msg.set(ADDRESS, 16, iov);
            msg.set(JAVA_LONG, 24, 1);
            msg.set(ADDRESS, 32, ctl);
            msg.set(JAVA_LONG, 40, space);
            long n;
            while (true) {
                n = (long) RECVMSG.invokeExact(st, sock, msg, MSG_CMSG_CLOEXEC);
                if (n >= 0) break;
                int e = errno(st);
                if (e != Errno.EINTR) throw new PosixException("recvmsg", e);
            }
            MemorySegment.copy(buf, JAVA_BYTE, 0, into, 0, (int) n);
            long controllen = msg.get(JAVA_LONG, 40);
            int[] fds = new int[0];
            long p = 0;
            while (p + 16 <= controllen) {
                long clen = ctl.get(JAVA_LONG, p);
                int level = ctl.get(JAVA_INT, p + 8), type = ctl.get(JAVA_INT, p + 12);
                if (clen < 16) break;
                if (level == SOL_SOCKET && type == SCM_RIGHTS) {
                    int count = (int) ((clen - 16) / 4);
                    int base = fds.length;
                    fds = java.util.Arrays.copyOf(fds, base + count);
                    for (int i = 0; i < count; i++) fds[base + i] = ctl.get(JAVA_INT, p + 16 + 4L * i);
                }
                p += (clen + 7) & ~7L;
            }
            if ((msg.get(JAVA_INT, 48) & MSG_CTRUNC) != 0) {
                for (int fd : fds) close(fd);
                throw new PosixException("recvmsg (control data truncated: fds lost)", Errno.EMSGSIZE);
            }
            return new Received((int) n, fds);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static final short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16;

    /**
     * poll(2) on one fd: the returned events, or 0 when {@code timeoutMs} passed first (-1 waits for ever).
     * EINTR is retried with the full timeout again, which only lengthens a wait.
     */
    public static int poll(int fd, short events, int timeoutMs) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment pfd = a.allocate(8, 4); // struct pollfd { int fd; short events; short revents; }
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(java.lang.foreign.ValueLayout.JAVA_SHORT, 4, events);
            while (true) {
                int rc = (int) POLL.invokeExact(st, pfd, 1L, timeoutMs);
                if (rc >= 0) return rc == 0 ? 0 : pfd.get(java.lang.foreign.ValueLayout.JAVA_SHORT, 6);
                if (errno(st) != Errno.EINTR) throw new PosixException("poll", errno(st));
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }
}

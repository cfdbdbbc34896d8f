package org.vfioexport.ffm.posix;

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
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The libc downcalls that {@link Fd} and {@link UnixSocket} are made of (glibc, LP64: x86-64 and aarch64), on bare
 * fd numbers; package-private so that numbers stay inside {@code ffm.posix}. The daemon's own calls (open, ioctl,
 * memfd, flock, ...) are in its {@code Posix}, built on the helpers here.
 *
 * <p>Each call captures {@code errno} in the same native call, so no later JVM activity can overwrite it, and turns
 * a failure into the typed exception {@link Errno#exception} makes of it, once, here at the boundary. Variadic
 * functions declare their variadic argument with {@code firstVariadicArg} as the ABI requires.
 */
final class Libc {
    private Libc() {}

    static final int F_DUPFD_CLOEXEC = 1030, F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;
    static final int SEEK_SET = 0, SEEK_END = 2;
    static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 02000000, SOCK_NONBLOCK = 04000;
    static final int SOL_SOCKET = 1, SCM_RIGHTS = 1, SO_PEERCRED = 17, SO_PEERGROUPS = 59;
    static final int MSG_NOSIGNAL = 0x4000, MSG_DONTWAIT = 0x40, MSG_CTRUNC = 0x8, MSG_CMSG_CLOEXEC = 0x40000000;
    /** SIOCOUTQ (= TIOCOUTQ) and FIONREAD (= SIOCINQ). */
    static final long SIOCOUTQ = 0x5411, FIONREAD = 0x541B;
    /** struct sockaddr_un: sun_family u16 @0, sun_path[108] @2. */
    static final long SOCKADDR_UN_SIZE = 110;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_OPT = Linker.Option.captureCallState("errno");

    /** A downcall handle to libc's {@code name} that captures errno (first argument: the capture state). */
    static MethodHandle fn(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = ERRNO_OPT;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, opts);
    }

    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FCNTL = fn("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle LSEEK = fn("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle IOCTL = fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle SOCKET = fn("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle SOCKETPAIR = fn("socketpair",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle CONNECT = fn("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle ACCEPT4 = fn("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = fn("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG = fn("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle GETSOCKOPT = fn("getsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SETSOCKOPT = fn("setsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle GETSOCKNAME = fn("getsockname", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle POLL = fn("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));

    /** errno of the call that just filled {@code state}. */
    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    static MemorySegment captureState(Arena a) {
        return a.allocate(CAPTURE);
    }

    static int check(int rc, MemorySegment state, String op) throws PosixException {
        if (rc < 0) throw Errno.exception(op, errno(state));
        return rc;
    }

    static long check(long rc, MemorySegment state, String op) throws PosixException {
        if (rc < 0) throw Errno.exception(op, errno(state));
        return rc;
    }

    /** What a downcall threw that is not a PosixException: a bug or an error of the JVM, rethrown unchecked. */
    static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /** close(2). EINTR still closes the fd on Linux, so it is not retried. */
    static void close(int fd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) CLOSE.invokeExact(st, fd);
            if (rc < 0 && errno(st) != Errno.EINTR.value) throw Errno.exception("close", errno(st));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    static int fcntl(int fd, int cmd, int arg) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) FCNTL.invokeExact(st, fd, cmd, arg);
            return check(rc, st, "fcntl");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    static long lseek(int fd, long offset, int whence) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            long rc = (long) LSEEK.invokeExact(st, fd, offset, whence);
            return check(rc, st, "lseek");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** ioctl(2) with a pointer argument; returns the ioctl's non-negative result. */
    static int ioctl(int fd, long request, MemorySegment arg, String op) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) IOCTL.invokeExact(st, fd, request, arg);
            return check(rc, st, op);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** An int-valued ioctl that reads into an int (SIOCOUTQ, FIONREAD). */
    static int ioctlInt(int fd, long request, String op) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            ioctl(fd, request, v, op);
            return v.get(JAVA_INT, 0);
        }
    }

    /** A connected pair of AF_UNIX stream sockets (close-on-exec). */
    static int[] socketpair() throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment sv = a.allocate(JAVA_INT, 2);
            check((int) SOCKETPAIR.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), st, "socketpair");
            return new int[] {sv.get(JAVA_INT, 0), sv.get(JAVA_INT, 4)};
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * accept4(2) of one pending connection on {@code listenFd} with {@code flags}. Returns the new fd, or -1 when
     * nothing is pending on a non-blocking socket (EAGAIN). EINTR is retried.
     */
    static int accept4(int listenFd, int flags) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            while (true) {
                int fd = (int) ACCEPT4.invokeExact(st, listenFd, MemorySegment.NULL, MemorySegment.NULL, flags);
                if (fd >= 0) return fd;
                int e = errno(st);
                if (e == Errno.EINTR.value) continue;
                if (e == Errno.EAGAIN.value) return -1;
                throw Errno.exception("accept4", e);
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * A sockaddr_un for {@code path}; a leading {@code @} names an abstract socket (a NUL first byte, as systemd
     * writes NOTIFY_SOCKET). Returns the address length to pass.
     */
    static int sockaddrUn(MemorySegment addr, String path, String op) throws PosixException {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        if (p.length >= 108) throw Errno.exception(op, Errno.ENAMETOOLONG.value);
        addr.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(p, 0, addr, JAVA_BYTE, 2, p.length);
        if (p.length > 0 && p[0] == '@') {
            addr.set(JAVA_BYTE, 2, (byte) 0);
            return 2 + p.length; // an abstract name is exactly its bytes, no terminating NUL
        }
        return (int) SOCKADDR_UN_SIZE;
    }

    /** A connected AF_UNIX stream socket (blocking, close-on-exec). */
    static int connectUnix(String path) throws PosixException {
        String op = "connect(" + path + ")";
        try (Arena a = Arena.ofConfined()) {
            MemorySegment addr = a.allocate(SOCKADDR_UN_SIZE, 2);
            int len = sockaddrUn(addr, path, op);
            MemorySegment st = captureState(a);
            int fd = check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st, "socket");
            int rc = (int) CONNECT.invokeExact(st, fd, addr, len);
            if (rc < 0) {
                int e = errno(st);
                close(fd);
                throw Errno.exception(op, e);
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
    static long sendWithFds(int sock, byte[] data, int offset, int len, int[] fds, int flags) throws PosixException {
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
                if (e == Errno.EINTR.value) continue;
                if (e == Errno.EAGAIN.value) return -1;
                throw Errno.exception("sendmsg", e);
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

    /** What one recvmsg(2) returned: the bytes read (0 at end of stream) and the fd numbers that came with them. */
    record Received(int length, int[] fds) {}

    /**
     * One recvmsg(2) into {@code into} (up to its length) with room for {@code maxFds} fds, received close-on-exec.
     * Fds cut off by a too-small control buffer are a protocol error: they are lost, so this throws.
     */
    static Received recvWithFds(int sock, byte[] into, int maxFds) throws PosixException {
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
                if (e != Errno.EINTR.value) throw Errno.exception("recvmsg", e);
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
                    fds = Arrays.copyOf(fds, base + count);
                    for (int i = 0; i < count; i++) fds[base + i] = ctl.get(JAVA_INT, p + 16 + 4L * i);
                }
                p += (clen + 7) & ~7L;
            }
            if ((msg.get(JAVA_INT, 48) & MSG_CTRUNC) != 0) {
                for (int fd : fds) close(fd);
                throw Errno.exception("recvmsg (control data truncated: fds lost)", Errno.EMSGSIZE.value);
            }
            return new Received((int) n, fds);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    static PeerCredentials peerCred(int sock) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment cred = a.allocate(12, 4);
            MemorySegment len = a.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, 12);
            int rc = (int) GETSOCKOPT.invokeExact(st, sock, SOL_SOCKET, SO_PEERCRED, cred, len);
            check(rc, st, "getsockopt(SO_PEERCRED)");
            return new PeerCredentials(cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8),
                    peerGroups(sock, a));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** The supplementary groups of the peer (SO_PEERGROUPS), or none where the kernel does not support it. */
    private static int[] peerGroups(int sock, Arena a) throws Throwable {
        int room = 64;
        while (true) {
            MemorySegment st = captureState(a);
            MemorySegment groups = a.allocate(4L * room, 4);
            MemorySegment len = a.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, 4 * room);
            int rc = (int) GETSOCKOPT.invokeExact(st, sock, SOL_SOCKET, SO_PEERGROUPS, groups, len);
            int n = len.get(JAVA_INT, 0) / 4;
            if (rc == 0) {
                int[] out = new int[n];
                for (int i = 0; i < n; i++) out[i] = groups.get(JAVA_INT, 4L * i);
                return out;
            }
            if (errno(st) != Errno.ERANGE.value || n <= room || room >= 65536) return new int[0];
            room = n; // the kernel said how many there are
        }
    }

    static void setIntSockopt(int sock, int level, int name, int value) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment v = a.allocate(JAVA_INT);
            v.set(JAVA_INT, 0, value);
            int rc = (int) SETSOCKOPT.invokeExact(st, sock, level, name, v, 4);
            check(rc, st, "setsockopt");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** An int-valued SOL_SOCKET option of {@code sock}; ENOTSOCK when {@code sock} is not a socket. */
    static int getsockoptInt(int sock, int option) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment value = a.allocate(JAVA_INT);
            MemorySegment len = a.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, 4);
            int rc = (int) GETSOCKOPT.invokeExact(st, sock, SOL_SOCKET, option, value, len);
            check(rc, st, "getsockopt(" + option + ")");
            return value.get(JAVA_INT, 0);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * The path a Unix socket is bound to (getsockname), with a leading {@code @} for an abstract name, or "" when it
     * is unnamed.
     */
    static String unixSocketName(int sock) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment addr = a.allocate(SOCKADDR_UN_SIZE, 2);
            MemorySegment len = a.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, (int) SOCKADDR_UN_SIZE);
            int rc = (int) GETSOCKNAME.invokeExact(st, sock, addr, len);
            check(rc, st, "getsockname");
            int n = Math.min(len.get(JAVA_INT, 0), (int) SOCKADDR_UN_SIZE) - 2;
            if (n <= 0) return "";
            byte[] path = addr.asSlice(2, n).toArray(JAVA_BYTE);
            if (path[0] == 0) return "@" + new String(path, 1, n - 1, StandardCharsets.UTF_8);
            int end = 0;
            while (end < n && path[end] != 0) end++;
            return new String(path, 0, end, StandardCharsets.UTF_8);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * poll(2) on one fd: the returned events, or 0 when {@code timeoutMs} passed first (-1 waits for ever).
     * EINTR is retried with the full timeout again, which only lengthens a wait.
     */
    static int poll(int fd, short events, int timeoutMs) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment pfd = a.allocate(8, 4); // struct pollfd { int fd; short events; short revents; }
            pfd.set(JAVA_INT, 0, fd);
            pfd.set(JAVA_SHORT, 4, events);
            while (true) {
                int rc = (int) POLL.invokeExact(st, pfd, 1L, timeoutMs);
                if (rc >= 0) return rc == 0 ? 0 : pfd.get(JAVA_SHORT, 6);
                if (errno(st) != Errno.EINTR.value) throw Errno.exception("poll", errno(st));
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }
}

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

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The daemon's libc downcalls on bare fd numbers (glibc, LP64: x86-64 and aarch64): the raw layer under
 * {@link Fd}, {@link UnixSocket} and {@link FileFd}, for {@code ffm} and {@code kernel.*} (and tests) only. Everything
 * else holds fds as objects; a source scan in the build keeps it so. The calls a client needs too are in
 * {@link Libc} (built with the client library); the ones here that are only the daemon's (open, ioctl, memfd,
 * flock, ...) use its helpers, and the socket calls are delegates to it, kept for code that works on numbers.
 *
 * <p>Each call captures {@code errno} in the same native call, so no later JVM activity can overwrite it, and
 * turns a failure into the typed exception {@link Errno#exception} makes of it, once, here at the boundary.
 * Variadic functions ({@code open}, {@code ioctl}, {@code fcntl}) declare their variadic argument with
 * {@code firstVariadicArg} as the ABI requires.
 */
public final class Posix {
    private Posix() {}

    // open(2) flags (asm-generic, x86-64)
    public static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100, O_EXCL = 0200, O_TRUNC = 01000,
            O_NONBLOCK = 04000, O_CLOEXEC = 02000000;
    /** O_NOFOLLOW is 0100000 on aarch64, where 0400000 (asm-generic, x86-64) means O_LARGEFILE: links would be followed. */
    public static final int O_NOFOLLOW = "aarch64".equals(System.getProperty("os.arch")) ? 0100000 : 0400000;
    /** O_DIRECTORY is 040000 on aarch64 (arch/arm64's fcntl.h), where 0200000 means O_DIRECT. */
    public static final int O_DIRECTORY = "aarch64".equals(System.getProperty("os.arch")) ? 040000 : 0200000;
    // memfd_create(2) / F_ADD_SEALS
    public static final int MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
    public static final int F_GETFL = 3, O_ACCMODE = 3, FD_CLOEXEC = 1;
    public static final int F_DUPFD_CLOEXEC = 1030, F_GETFD = 1, F_SETFD = 2, F_ADD_SEALS = 1033, F_GET_SEALS = 1034;
    public static final int F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;
    public static final int SEEK_SET = 0, SEEK_END = 2;
    // mmap(2) / mprotect(2)
    public static final int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
    // flock(2)
    public static final int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    // sockets
    public static final int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 02000000, SOCK_NONBLOCK = 04000;
    public static final int SOL_SOCKET = 1, SCM_RIGHTS = 1, SO_PEERCRED = 17, SO_SNDBUF = 7, SO_RCVBUF = 8;
    public static final int MSG_NOSIGNAL = 0x4000, MSG_DONTWAIT = 0x40, MSG_CTRUNC = 0x8, MSG_CMSG_CLOEXEC = 0x40000000;

    // getrlimit(2)
    public static final int RLIMIT_NOFILE = 7;

    private static final MethodHandle OPEN = Libc.fn("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle OPENAT = Libc.fn("openat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(3));
    private static final MethodHandle STATX = Libc.fn("statx",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle IOCTL = Libc.fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_INT = Libc.fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = Libc.fn("pread", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle PWRITE = Libc.fn("pwrite", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MEMFD_CREATE = Libc.fn("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = Libc.fn("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MMAP = Libc.fn("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MPROTECT = Libc.fn("mprotect", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MUNMAP = Libc.fn("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle FLOCK = Libc.fn("flock", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle SOCKET = Libc.fn("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle GETRLIMIT = Libc.fn("getrlimit", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle BIND = Libc.fn("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDTO = Libc.fn("sendto",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle UNSETENV = Libc.fn("unsetenv", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle READLINK = Libc.fn("readlink", FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG));

    public static int open(String path, int flags, int mode) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) OPEN.invokeExact(st, a.allocateFrom(path), flags, mode);
            return Libc.check(rc, st, "open(" + path + ")");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    /** openat(2): {@code name} relative to the directory open as {@code dirFd}. */
    public static int openat(int dirFd, String name, int flags, int mode) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) OPENAT.invokeExact(st, dirFd, a.allocateFrom(name), flags, mode);
            return Libc.check(rc, st, "openat(" + name + ")");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    // statx(2) with AT_EMPTY_PATH is fstat(2) with one struct layout on every architecture (struct stat differs)
    private static final int AT_EMPTY_PATH = 0x1000, STATX_BASIC_STATS = 0x7ff;

    /** fstat(2) of an open fd, through statx(2). struct statx: nlink u32 @16, uid @20, gid @24, mode u16 @28. */
    public static FileStat fstat(int fd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            MemorySegment buf = a.allocate(256, 8);
            int rc = (int) STATX.invokeExact(st, fd, a.allocateFrom(""), AT_EMPTY_PATH, STATX_BASIC_STATS, buf);
            Libc.check(rc, st, "statx");
            return new FileStat(Short.toUnsignedInt(buf.get(java.lang.foreign.ValueLayout.JAVA_SHORT, 28)),
                    buf.get(JAVA_INT, 20), buf.get(JAVA_INT, 24), buf.get(JAVA_INT, 16));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    /** ioctl(2) with an integer argument (or none: pass 0). */
    public static int ioctl(int fd, long request, long arg, String op) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) IOCTL_INT.invokeExact(st, fd, request, arg);
            return Libc.check(rc, st, op);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static long pread(int fd, MemorySegment buf, long count, long offset) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            long rc = (long) PREAD.invokeExact(st, fd, buf, count, offset);
            return Libc.check(rc, st, "pread");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static long pwrite(int fd, MemorySegment buf, long count, long offset) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            long rc = (long) PWRITE.invokeExact(st, fd, buf, count, offset);
            return Libc.check(rc, st, "pwrite");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static int memfdCreate(String name, int flags) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) MEMFD_CREATE.invokeExact(st, a.allocateFrom(name), flags);
            return Libc.check(rc, st, "memfd_create");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static void ftruncate(int fd, long length) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) FTRUNCATE.invokeExact(st, fd, length);
            Libc.check(rc, st, "ftruncate");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    /** A close-on-exec duplicate of {@code fd}. */
    public static int dup(int fd) throws PosixException {
        return fcntl(fd, F_DUPFD_CLOEXEC, 0);
    }

    /** A private anonymous mapping of {@code length} bytes (page-rounded by the kernel) with protection {@code prot}. */
    public static MemorySegment mmapAnonymous(long length, int prot) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            MemorySegment p = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, length, prot,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
            if (p.address() == -1L) throw Errno.exception("mmap", Libc.errno(st)); // MAP_FAILED
            return p.reinterpret(length);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static void mprotect(MemorySegment pages, int prot) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) MPROTECT.invokeExact(st, pages, pages.byteSize(), prot);
            Libc.check(rc, st, "mprotect");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static void munmap(MemorySegment pages) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) MUNMAP.invokeExact(st, pages, pages.byteSize());
            Libc.check(rc, st, "munmap");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    public static void flock(int fd, int op) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int rc = (int) FLOCK.invokeExact(st, fd, op);
            Libc.check(rc, st, "flock");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    /** The target of a /proc fd link, e.g. {@code /memfd:vfio-export (deleted)} or {@code /dmabuf:}. */
    public static String readlink(String path) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            MemorySegment buf = a.allocate(4096);
            long n = (long) READLINK.invokeExact(st, a.allocateFrom(path), buf, 4096L);
            Libc.check(n, st, "readlink");
            return new String(buf.asSlice(0, n).toArray(JAVA_BYTE), StandardCharsets.UTF_8);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    /** A resource limit: the soft (enforced) and hard values; RLIM_INFINITY reads as -1. */
    public record Rlimit(long soft, long hard) {}

    /** getrlimit(2), e.g. of {@link #RLIMIT_NOFILE}. */
    public static Rlimit getrlimit(int resource) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            MemorySegment lim = a.allocate(16, 8); // struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; }
            int rc = (int) GETRLIMIT.invokeExact(st, resource, lim);
            Libc.check(rc, st, "getrlimit");
            return new Rlimit(lim.get(JAVA_LONG, 0), lim.get(JAVA_LONG, 8));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    // ---- Unix datagram sockets (sd_notify) -----------------------------------------------------------------

    public static final int SOCK_DGRAM = 2;

    /** One datagram to the AF_UNIX datagram socket at {@code path} (sd_notify's transport), from a fresh socket. */
    public static void sendDatagram(String path, byte[] message) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int fd = Libc.check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), st, "socket");
            try {
                MemorySegment addr = a.allocate(Libc.SOCKADDR_UN_SIZE, 2);
                int len = Libc.sockaddrUn(addr, path, "sendto(" + path + ")");
                MemorySegment buf = a.allocate(Math.max(1, message.length));
                MemorySegment.copy(message, 0, buf, JAVA_BYTE, 0, message.length);
                long n = (long) SENDTO.invokeExact(st, fd, buf, (long) message.length, MSG_NOSIGNAL, addr, len);
                if (n < 0) throw Errno.exception("sendto(" + path + ")", Libc.errno(st));
            } finally {
                Libc.close(fd);
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    /** An AF_UNIX datagram socket bound to {@code path} (close-on-exec), to receive with {@link #recvWithFds}. */
    public static int bindDatagram(String path) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = Libc.captureState(a);
            int fd = Libc.check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), st, "socket");
            MemorySegment addr = a.allocate(Libc.SOCKADDR_UN_SIZE, 2);
            int len = Libc.sockaddrUn(addr, path, "bind(" + path + ")");
            int rc = (int) BIND.invokeExact(st, fd, addr, len);
            if (rc < 0) {
                int e = Libc.errno(st);
                Libc.close(fd);
                throw Errno.exception("bind(" + path + ")", e);
            }
            return fd;
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }

    // ---- the calls of Libc, on numbers ----------------------------------------------------------------------

    /** close(2). EINTR still closes the fd on Linux, so it is not retried. */
    public static void close(int fd) throws PosixException {
        Libc.close(fd);
    }

    public static int fcntl(int fd, int cmd, int arg) throws PosixException {
        return Libc.fcntl(fd, cmd, arg);
    }

    public static long lseek(int fd, long offset, int whence) throws PosixException {
        return Libc.lseek(fd, offset, whence);
    }

    /** ioctl(2) with a pointer argument; returns the ioctl's non-negative result. */
    public static int ioctl(int fd, long request, MemorySegment arg, String op) throws PosixException {
        return Libc.ioctl(fd, request, arg, op);
    }

    /** accept4(2): the new fd, or -1 when nothing is pending on a non-blocking socket (EAGAIN). */
    public static int accept4(int listenFd, int flags) throws PosixException {
        return Libc.accept4(listenFd, flags);
    }

    /** A connected AF_UNIX stream socket (blocking, close-on-exec). */
    public static int connectUnix(String path) throws PosixException {
        return Libc.connectUnix(path);
    }

    /** One sendmsg(2) with SCM_RIGHTS: the bytes sent, or -1 when the socket would block (EAGAIN). */
    public static long sendWithFds(int sock, byte[] data, int offset, int len, int[] fds, int flags) throws PosixException {
        return Libc.sendWithFds(sock, data, offset, len, fds, flags);
    }

    /** What one recvmsg(2) returned: the bytes read (0 at end of stream) and the fds that came with them. */
    public record Received(int length, int[] fds) {}

    /** One recvmsg(2) with room for {@code maxFds} fds, received close-on-exec. */
    public static Received recvWithFds(int sock, byte[] into, int maxFds) throws PosixException {
        Libc.Received r = Libc.recvWithFds(sock, into, maxFds);
        return new Received(r.length(), r.fds());
    }

    public static PeerCredentials peerCred(int sock) throws PosixException {
        return Libc.peerCred(sock);
    }

    /** SIOCOUTQ: bytes sent on {@code sock} not yet read by the peer. */
    public static int unreadByPeer(int sock) throws PosixException {
        return Libc.ioctlInt(sock, Libc.SIOCOUTQ, "ioctl(SIOCOUTQ)");
    }

    /** FIONREAD: bytes waiting in {@code sock}'s receive queue, fds not counted. */
    public static int readableBytes(int sock) throws PosixException {
        return Libc.ioctlInt(sock, Libc.FIONREAD, "ioctl(FIONREAD)");
    }

    /** poll(2) on one fd: the returned events, or 0 when {@code timeoutMs} passed first. */
    public static int poll(int fd, short events, int timeoutMs) throws PosixException {
        return Libc.poll(fd, events, timeoutMs);
    }

    public static void setIntSockopt(int sock, int level, int name, int value) throws PosixException {
        Libc.setIntSockopt(sock, level, name, value);
    }

    public static int getsockoptInt(int sock, int option) throws PosixException {
        return Libc.getsockoptInt(sock, option);
    }

    public static String unixSocketName(int sock) throws PosixException {
        return Libc.unixSocketName(sock);
    }

    public static final short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16;

    /** Socket options read by {@link #getsockoptInt}: the socket's type, its domain, whether it listens. */
    public static final int SO_TYPE = 3, SO_ACCEPTCONN = 30, SO_DOMAIN = 39;

    /** Removes {@code name} from the C environment (what native code and exec'd children see). */
    public static void unsetenv(String name) {
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) UNSETENV.invokeExact(Libc.captureState(a), a.allocateFrom(name));
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }
}

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
 * Every libc downcall of the project, in one place (glibc, LP64: x86-64 and aarch64).
 *
 * <p>Each call captures {@code errno} in the same native call, so no later JVM activity can overwrite it, and
 * turns a failure into a {@link PosixException} once, here at the boundary. Variadic functions ({@code open},
 * {@code ioctl}, {@code fcntl}) declare their variadic argument with {@code firstVariadicArg} as the ABI requires.
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

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_OPT = Linker.Option.captureCallState("errno");

    private static MethodHandle fn(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = ERRNO_OPT;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, opts);
    }

    private static final MethodHandle OPEN = fn("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle OPENAT = fn("openat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(3));
    private static final MethodHandle STATX = fn("statx",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle IOCTL = fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_INT = fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = fn("pread", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle PWRITE = fn("pwrite", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle MEMFD_CREATE = fn("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle FTRUNCATE = fn("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle FCNTL = fn("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle LSEEK = fn("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MMAP = fn("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MPROTECT = fn("mprotect", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MUNMAP = fn("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle FLOCK = fn("flock", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle SOCKET = fn("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = fn("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle GETRLIMIT = fn("getrlimit", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle CONNECT = fn("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle BIND = fn("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDTO = fn("sendto",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG = fn("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG = fn("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle GETSOCKOPT = fn("getsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SETSOCKOPT = fn("setsockopt",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle POLL = fn("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle GETSOCKNAME = fn("getsockname", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle UNSETENV = fn("unsetenv", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    private static final MethodHandle READLINK = fn("readlink", FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG));

    /** errno of the call that just filled {@code state}. */
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

    private static long check(long rc, MemorySegment state, String op) throws PosixException {
        if (rc < 0) throw new PosixException(op, errno(state));
        return rc;
    }

    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    public static int open(String path, int flags, int mode) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) OPEN.invokeExact(st, a.allocateFrom(path), flags, mode);
            return check(rc, st, "open(" + path + ")");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** openat(2): {@code name} relative to the directory open as {@code dirFd}. */
    public static int openat(int dirFd, String name, int flags, int mode) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) OPENAT.invokeExact(st, dirFd, a.allocateFrom(name), flags, mode);
            return check(rc, st, "openat(" + name + ")");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** What {@link #fstat} tells: the file type and permission bits ({@code st_mode}), owner and link count. */
    public record FileStat(int mode, int uid, int gid, int nlink) {
        public static final int S_IFMT = 0170000, S_IFREG = 0100000, S_IFDIR = 0040000, S_ISVTX = 01000;

        public boolean isRegularFile() {
            return (mode & S_IFMT) == S_IFREG;
        }

        public boolean isDirectory() {
            return (mode & S_IFMT) == S_IFDIR;
        }
    }

    // statx(2) with AT_EMPTY_PATH is fstat(2) with one struct layout on every architecture (struct stat differs)
    private static final int AT_EMPTY_PATH = 0x1000, STATX_BASIC_STATS = 0x7ff;

    /** fstat(2) of an open fd, through statx(2). struct statx: nlink u32 @16, uid @20, gid @24, mode u16 @28. */
    public static FileStat fstat(int fd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment buf = a.allocate(256, 8);
            int rc = (int) STATX.invokeExact(st, fd, a.allocateFrom(""), AT_EMPTY_PATH, STATX_BASIC_STATS, buf);
            check(rc, st, "statx");
            return new FileStat(Short.toUnsignedInt(buf.get(java.lang.foreign.ValueLayout.JAVA_SHORT, 28)),
                    buf.get(JAVA_INT, 20), buf.get(JAVA_INT, 24), buf.get(JAVA_INT, 16));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** close(2). EINTR still closes the fd on Linux, so it is not retried. */
    public static void close(int fd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) CLOSE.invokeExact(st, fd);
            if (rc < 0 && errno(st) != Errno.EINTR.value) throw new PosixException("close", errno(st));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** ioctl(2) with a pointer argument; returns the ioctl's non-negative result. */
    public static int ioctl(int fd, long request, MemorySegment arg, String op) throws PosixException {
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

    /** ioctl(2) with an integer argument (or none: pass 0). */
    public static int ioctl(int fd, long request, long arg, String op) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) IOCTL_INT.invokeExact(st, fd, request, arg);
            return check(rc, st, op);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static long pread(int fd, MemorySegment buf, long count, long offset) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            long rc = (long) PREAD.invokeExact(st, fd, buf, count, offset);
            return check(rc, st, "pread");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static long pwrite(int fd, MemorySegment buf, long count, long offset) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            long rc = (long) PWRITE.invokeExact(st, fd, buf, count, offset);
            return check(rc, st, "pwrite");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int memfdCreate(String name, int flags) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) MEMFD_CREATE.invokeExact(st, a.allocateFrom(name), flags);
            return check(rc, st, "memfd_create");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void ftruncate(int fd, long length) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) FTRUNCATE.invokeExact(st, fd, length);
            check(rc, st, "ftruncate");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int fcntl(int fd, int cmd, int arg) throws PosixException {
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

    /** A close-on-exec duplicate of {@code fd}. */
    public static int dup(int fd) throws PosixException {
        return fcntl(fd, F_DUPFD_CLOEXEC, 0);
    }

    public static long lseek(int fd, long offset, int whence) throws PosixException {
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

    /** A private anonymous mapping of {@code length} bytes (page-rounded by the kernel) with protection {@code prot}. */
    public static MemorySegment mmapAnonymous(long length, int prot) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment p = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, length, prot,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
            if (p.address() == -1L) throw new PosixException("mmap", errno(st)); // MAP_FAILED
            return p.reinterpret(length);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void mprotect(MemorySegment pages, int prot) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) MPROTECT.invokeExact(st, pages, pages.byteSize(), prot);
            check(rc, st, "mprotect");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void munmap(MemorySegment pages) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) MUNMAP.invokeExact(st, pages, pages.byteSize());
            check(rc, st, "munmap");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void flock(int fd, int op) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int rc = (int) FLOCK.invokeExact(st, fd, op);
            check(rc, st, "flock");
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** The target of a /proc fd link, e.g. {@code /memfd:vfio-export (deleted)} or {@code /dmabuf:}. */
    public static String readlink(String path) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment buf = a.allocate(4096);
            long n = (long) READLINK.invokeExact(st, a.allocateFrom(path), buf, 4096L);
            check(n, st, "readlink");
            return new String(buf.asSlice(0, n).toArray(JAVA_BYTE), StandardCharsets.UTF_8);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** A resource limit: the soft (enforced) and hard values; RLIM_INFINITY reads as -1. */
    public record Rlimit(long soft, long hard) {}

    /** getrlimit(2), e.g. of {@link #RLIMIT_NOFILE}. */
    public static Rlimit getrlimit(int resource) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment lim = a.allocate(16, 8); // struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; }
            int rc = (int) GETRLIMIT.invokeExact(st, resource, lim);
            check(rc, st, "getrlimit");
            return new Rlimit(lim.get(JAVA_LONG, 0), lim.get(JAVA_LONG, 8));
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    // ---- Unix domain sockets -------------------------------------------------------------------------------

    /**
     * accept4(2) of one pending connection on the listening socket {@code listenFd} with {@code flags}
     * ({@link #SOCK_CLOEXEC}, {@link #SOCK_NONBLOCK}). Returns the new fd, or -1 when nothing is pending on a
     * non-blocking socket (EAGAIN). EINTR is retried.
     */
    public static int accept4(int listenFd, int flags) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            while (true) {
                int fd = (int) ACCEPT4.invokeExact(st, listenFd, MemorySegment.NULL, MemorySegment.NULL, flags);
                if (fd >= 0) return fd;
                int e = errno(st);
                if (e == Errno.EINTR.value) continue;
                if (e == Errno.EAGAIN.value) return -1;
                throw new PosixException("accept4", e);
            }
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
        if (p.length >= 108) throw new PosixException("connect(" + path + ")", Errno.ENAMETOOLONG.value);
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

    public static final int SOCK_DGRAM = 2;

    /**
     * A sockaddr_un for {@code path}; a leading {@code @} names an abstract socket (a NUL first byte, as systemd
     * writes NOTIFY_SOCKET). Returns the address length to pass.
     */
    private static int sockaddrUn(MemorySegment addr, String path, String op) throws PosixException {
        byte[] p = path.getBytes(StandardCharsets.UTF_8);
        if (p.length >= 108) throw new PosixException(op, Errno.ENAMETOOLONG.value);
        addr.set(java.lang.foreign.ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(p, 0, addr, JAVA_BYTE, 2, p.length);
        if (p.length > 0 && p[0] == '@') {
            addr.set(JAVA_BYTE, 2, (byte) 0);
            return 2 + p.length; // an abstract name is exactly its bytes, no terminating NUL
        }
        return (int) SOCKADDR_UN_SIZE;
    }

    /** One datagram to the AF_UNIX datagram socket at {@code path} (sd_notify's transport), from a fresh socket. */
    public static void sendDatagram(String path, byte[] message) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int fd = check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), st, "socket");
            try {
                MemorySegment addr = a.allocate(SOCKADDR_UN_SIZE, 2);
                int len = sockaddrUn(addr, path, "sendto(" + path + ")");
                MemorySegment buf = a.allocate(Math.max(1, message.length));
                MemorySegment.copy(message, 0, buf, JAVA_BYTE, 0, message.length);
                long n = (long) SENDTO.invokeExact(st, fd, buf, (long) message.length, MSG_NOSIGNAL, addr, len);
                if (n < 0) throw new PosixException("sendto(" + path + ")", errno(st));
            } finally {
                close(fd);
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** An AF_UNIX datagram socket bound to {@code path} (close-on-exec), to receive with {@link #recvWithFds}. */
    public static int bindDatagram(String path) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            int fd = check((int) SOCKET.invokeExact(st, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), st, "socket");
            MemorySegment addr = a.allocate(SOCKADDR_UN_SIZE, 2);
            int len = sockaddrUn(addr, path, "bind(" + path + ")");
            int rc = (int) BIND.invokeExact(st, fd, addr, len);
            if (rc < 0) {
                int e = errno(st);
                close(fd);
                throw new PosixException("bind(" + path + ")", e);
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
                if (e == Errno.EINTR.value) continue;
                if (e == Errno.EAGAIN.value) return -1;
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
                if (e != Errno.EINTR.value) throw new PosixException("recvmsg", e);
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
                throw new PosixException("recvmsg (control data truncated: fds lost)", Errno.EMSGSIZE.value);
            }
            return new Received((int) n, fds);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * The peer's credentials, recorded by the kernel at connect(2): SO_PEERCRED gives the pid, uid and primary gid;
     * SO_PEERGROUPS (Linux 4.13+) the supplementary groups, empty where the kernel cannot say.
     */
    public record PeerCred(int pid, int uid, int gid, int[] groups) {
        public PeerCred(int pid, int uid, int gid) {
            this(pid, uid, gid, new int[0]);
        }

        /** True if {@code g} is the primary gid or one of the supplementary groups. */
        public boolean inGroup(int g) {
            if (g == gid) return true;
            for (int x : groups) if (x == g) return true;
            return false;
        }
    }

    private static final int SO_PEERGROUPS = 59;

    public static PeerCred peerCred(int sock) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = captureState(a);
            MemorySegment cred = a.allocate(12, 4);
            MemorySegment len = a.allocate(JAVA_INT);
            len.set(JAVA_INT, 0, 12);
            int rc = (int) GETSOCKOPT.invokeExact(st, sock, SOL_SOCKET, SO_PEERCRED, cred, len);
            check(rc, st, "getsockopt(SO_PEERCRED)");
            return new PeerCred(cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8), peerGroups(sock, a));
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

    /** SIOCOUTQ (= TIOCOUTQ): bytes a socket has sent that its peer has not yet read. */
    private static final long SIOCOUTQ = 0x5411;

    /**
     * The bytes of a connected Unix stream socket not yet read by the peer (SIOCOUTQ: what the peer's receive
     * queue still charges to this socket). Zero means the peer has received everything sent so far, fds included.
     */
    public static int unreadByPeer(int sock) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            ioctl(sock, SIOCOUTQ, v, "ioctl(SIOCOUTQ)");
            return v.get(JAVA_INT, 0);
        }
    }

    /** FIONREAD (= SIOCINQ): bytes waiting to be read on a socket. */
    private static final long FIONREAD = 0x541B;

    /** The bytes waiting in a stream socket's receive queue (FIONREAD), fds not counted. */
    public static int readableBytes(int sock) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            ioctl(sock, FIONREAD, v, "ioctl(FIONREAD)");
            return v.get(JAVA_INT, 0);
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
                if (errno(st) != Errno.EINTR.value) throw new PosixException("poll", errno(st));
            }
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static void setIntSockopt(int sock, int level, int name, int value) throws PosixException {
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

    /** Socket options read by {@link #getsockoptInt}: the socket's type, its domain, whether it listens. */
    public static final int SO_TYPE = 3, SO_ACCEPTCONN = 30, SO_DOMAIN = 39;

    /** An int-valued SOL_SOCKET option of {@code sock}; ENOTSOCK when {@code sock} is not a socket. */
    public static int getsockoptInt(int sock, int option) throws PosixException {
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
    public static String unixSocketName(int sock) throws PosixException {
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
            if (path[0] == 0) return "@" + new String(path, 1, n - 1, java.nio.charset.StandardCharsets.UTF_8);
            int end = 0;
            while (end < n && path[end] != 0) end++;
            return new String(path, 0, end, java.nio.charset.StandardCharsets.UTF_8);
        } catch (PosixException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Removes {@code name} from the C environment (what native code and exec'd children see). */
    public static void unsetenv(String name) {
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) UNSETENV.invokeExact(captureState(a), a.allocateFrom(name));
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }
}

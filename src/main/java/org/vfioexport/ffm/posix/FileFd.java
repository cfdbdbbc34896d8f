package org.vfioexport.ffm.posix;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * An open file or directory: an {@link Fd} with the file calls the daemon makes on its own files (the socket
 * directory, the lock file, the pidfile). Opened close-on-exec, always.
 */
public final class FileFd extends Fd {
    /** Flags of {@link #open} and {@link #openat}: {@link Posix}'s ({@code O_CLOEXEC} is always added). */
    public static final int O_RDONLY = Posix.O_RDONLY, O_WRONLY = Posix.O_WRONLY, O_RDWR = Posix.O_RDWR,
            O_CREAT = Posix.O_CREAT, O_TRUNC = Posix.O_TRUNC, O_NOFOLLOW = Posix.O_NOFOLLOW, O_NONBLOCK = Posix.O_NONBLOCK;

    private FileFd(int fd) {
        super(fd, CLOSE);
    }

    /** open(2) of {@code path} with {@code flags} (see the constants) and, when creating, {@code mode}. */
    public static FileFd open(Path path, int flags, int mode) throws PosixException {
        return new FileFd(Posix.open(path.toString(), flags | Posix.O_CLOEXEC, mode));
    }

    /** openat(2): {@code name} in this directory, so the directory checked is the one used. */
    public FileFd openat(String name, int flags, int mode) throws PosixException {
        return new FileFd(use("openat(" + name + ")", dir -> Posix.openat(dir, name, flags | Posix.O_CLOEXEC, mode)));
    }

    /** fstat(2): type, permission bits, owner and link count of the open file. */
    public FileStat stat() throws PosixException {
        return use("statx", Posix::fstat);
    }

    /**
     * Takes an exclusive {@code flock} without waiting: false when another open file holds it (EWOULDBLOCK, which
     * is EAGAIN on Linux and not an error here).
     */
    public boolean tryLockExclusive() throws PosixException {
        return use("flock", fd -> {
            try {
                Posix.flock(fd, Posix.LOCK_EX | Posix.LOCK_NB);
                return true;
            } catch (PosixException e) {
                if (e.is(Errno.EAGAIN)) return false;
                throw e;
            }
        });
    }

    /** ftruncate(2) to {@code length} bytes. */
    public void truncate(long length) throws PosixException {
        use("ftruncate", fd -> {
            Posix.ftruncate(fd, length);
            return null;
        });
    }

    /** pwrite(2) of {@code data} at {@code offset}: the bytes written. */
    public long pwrite(byte[] data, long offset) throws PosixException {
        return use("pwrite", fd -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment buf = a.allocateFrom(ValueLayout.JAVA_BYTE, data);
                return Posix.pwrite(fd, buf, data.length, offset);
            }
        });
    }

    /** pread(2) of up to {@code max} bytes at {@code offset}: what was read (shorter at the end of the file). */
    public byte[] pread(int max, long offset) throws PosixException {
        return use("pread", fd -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment buf = a.allocate(Math.max(1, max));
                long n = Posix.pread(fd, buf, max, offset);
                return buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
            }
        });
    }

    @Override
    public String toString() {
        return "file " + super.toString();
    }
}

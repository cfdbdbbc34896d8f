package org.vfioexport.app;

import org.vfioexport.ffm.posix.FileFd;
import org.vfioexport.ffm.posix.FileStat;
import org.vfioexport.ffm.posix.PosixException;

import java.io.IOException;
import java.net.ConnectException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;

/**
 * Ownership of a socket path, the way SPDK does it: an exclusive {@code flock} on {@code <socket>.lock}, held for
 * the daemon's lifetime. Only the lock holder may remove a socket file left by a crashed run; a socket that still
 * answers means another server lives there, which is an error. The lock file holds the owner's pid, for messages.
 */
public final class SocketLock implements AutoCloseable {
    private final Path lockPath;
    private final FileFd fd;
    private final boolean removedStale;

    private SocketLock(Path lockPath, FileFd fd, boolean removedStale) {
        this.lockPath = lockPath;
        this.fd = fd;
        this.removedStale = removedStale;
    }

    public static Path lockPathOf(Path socket) {
        return socket.resolveSibling(socket.getFileName() + ".lock");
    }

    /**
     * Takes the lock of {@code socket} and clears a stale socket file; the socket path is then free to bind.
     * The lock file is opened in the checked socket directory ({@link SocketDirectory}) without following a
     * symlink, and must be a regular file of the daemon's uid with one link: a planted symlink, hard link, FIFO
     * or directory is refused, never written through. The pid is written through the locked fd.
     */
    public static SocketLock acquire(Path socket) throws StartupException {
        Path lock = lockPathOf(socket);
        int uid = Daemon.daemonUid();
        Path absolute = socket.toAbsolutePath();
        FileFd fd;
        try (FileFd dir = SocketDirectory.open(absolute.getParent(), uid)) {
            // O_NONBLOCK: a FIFO or device planted there is not waited on (and then refused as not a regular file)
            fd = dir.openat(lock.getFileName().toString(),
                    FileFd.O_RDWR | FileFd.O_CREAT | FileFd.O_NOFOLLOW | FileFd.O_NONBLOCK, 0644);
        } catch (PosixException e) {
            throw new StartupException(switch (e.errnoValue()) {
                case ELOOP -> "refusing the lock file " + lock + ": it is a symbolic link (remove it)";
                case EISDIR -> "refusing the lock file " + lock + ": it is a directory, not a regular file (remove it)";
                case null, default -> "cannot open the lock file " + lock + ": " + e.errnoDescription();
            }, e);
        }
        try {
            checkLockFile(fd, lock, uid);
            boolean locked;
            try {
                locked = fd.tryLockExclusive();
            } catch (PosixException e) {
                throw new StartupException("flock(" + lock + ") failed: " + e.errnoDescription(), e);
            }
            if (!locked) {
                throw new StartupException("another vfio-exportd" + ownerOf(fd) + " holds " + lock
                        + ": it is serving " + socket + "; stop it first or choose another --socket");
            }
            writePid(fd);
            boolean stale = clearStale(socket);
            return new SocketLock(lock, fd, stale);
        } catch (StartupException | RuntimeException e) {
            FileFd.closeQuietly(fd);
            throw e;
        } catch (IOException e) {
            FileFd.closeQuietly(fd);
            throw new StartupException("cannot write the lock file " + lock + ": " + e.getMessage(), e);
        }
    }

    /** The open lock file must be a regular file, the daemon's own, with no other name (no planted hard link). */
    private static void checkLockFile(FileFd fd, Path lock, int uid) throws StartupException, PosixException {
        FileStat st = fd.stat();
        String problem = !st.isRegularFile() ? "it is not a regular file"
                : st.uid() != uid ? "it is owned by uid " + st.uid() + ", not by the daemon's uid " + uid
                : st.nlink() != 1 ? "it has " + st.nlink() + " hard links"
                : null;
        if (problem != null) throw new StartupException("refusing the lock file " + lock + ": " + problem + " (remove it)");
    }

    /** Replaces the file's content with this process's pid, through the locked fd (never by path). */
    private static void writePid(FileFd fd) throws IOException {
        byte[] pid = (ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII);
        fd.truncate(0);
        long n = fd.pwrite(pid, 0);
        if (n != pid.length) throw new IOException("short write of the pid (" + n + " of " + pid.length + " bytes)");
    }

    /** True if a stale socket file was removed. */
    private static boolean clearStale(Path socket) throws StartupException, IOException {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) return false;
        PosixFileAttributes a = Files.readAttributes(socket, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!a.isOther()) throw new StartupException("refusing to replace " + socket + ": it exists and is not a socket");
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            throw new StartupException("a live server answers on " + socket + " (without holding "
                    + lockPathOf(socket) + "); stop it first or choose another --socket");
        } catch (ConnectException e) {
            Files.delete(socket); // nobody listens: a crashed run left it, and we hold the lock
            return true;
        }
    }

    /** " (pid N)" as the holder wrote it into the lock file, read through our own fd of it; empty if unknown. */
    private static String ownerOf(FileFd fd) {
        try {
            String pid = new String(fd.pread(32, 0), StandardCharsets.US_ASCII).trim();
            return pid.matches("[0-9]{1,10}") ? " (pid " + pid + ")" : "";
        } catch (PosixException e) {
            return "";
        }
    }

    public boolean removedStale() {
        return removedStale;
    }

    public Path path() {
        return lockPath;
    }

    /** Releases the lock (the file stays: removing it would race with a daemon that is just opening it). */
    @Override
    public void close() {
        FileFd.closeQuietly(fd);
    }
}

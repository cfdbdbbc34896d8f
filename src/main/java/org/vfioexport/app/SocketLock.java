package org.vfioexport.app;

import org.vfioexport.ffm.posix.Posix;
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
    private static final int EWOULDBLOCK = 11;

    private final Path lockPath;
    private final int fd;
    private final boolean removedStale;

    private SocketLock(Path lockPath, int fd, boolean removedStale) {
        this.lockPath = lockPath;
        this.fd = fd;
        this.removedStale = removedStale;
    }

    public static Path lockPathOf(Path socket) {
        return socket.resolveSibling(socket.getFileName() + ".lock");
    }

    /** Takes the lock of {@code socket} and clears a stale socket file; the socket path is then free to bind. */
    public static SocketLock acquire(Path socket) throws StartupException {
        Path lock = lockPathOf(socket);
        try {
            Path dir = socket.toAbsolutePath().getParent();
            if (dir != null) Files.createDirectories(dir);
        } catch (IOException e) {
            throw new StartupException("cannot create the directory of " + socket + ": " + e.getMessage(), e);
        }
        int fd;
        try {
            fd = Posix.open(lock.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0644);
        } catch (PosixException e) {
            throw new StartupException("cannot open the lock file " + lock + " (errno " + e.errno() + ")", e);
        }
        try {
            try {
                Posix.flock(fd, Posix.LOCK_EX | Posix.LOCK_NB);
            } catch (PosixException e) {
                if (e.errno() != EWOULDBLOCK) throw new StartupException("flock(" + lock + ") failed (errno " + e.errno() + ")", e);
                throw new StartupException("another vfio-exportd" + ownerOf(lock) + " holds " + lock
                        + ": it is serving " + socket + "; stop it first or choose another --socket");
            }
            Files.writeString(lock, ProcessHandle.current().pid() + "\n", StandardCharsets.US_ASCII);
            boolean stale = clearStale(socket);
            return new SocketLock(lock, fd, stale);
        } catch (StartupException | RuntimeException e) {
            closeQuietly(fd);
            throw e;
        } catch (IOException e) {
            closeQuietly(fd);
            throw new StartupException("cannot write the lock file " + lock + ": " + e.getMessage(), e);
        }
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

    private static String ownerOf(Path lock) {
        try {
            String pid = Files.readString(lock, StandardCharsets.US_ASCII).trim();
            return pid.isEmpty() ? "" : " (pid " + pid + ")";
        } catch (IOException e) {
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
        closeQuietly(fd);
    }

    private static void closeQuietly(int fd) {
        try {
            Posix.close(fd);
        } catch (PosixException ignored) {
            // nothing else to do with a failed close of our own lock fd
        }
    }
}

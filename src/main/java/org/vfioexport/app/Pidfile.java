package org.vfioexport.app;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * {@code --pidfile}: the daemon's pid, written once it listens and removed at a clean stop. Written without
 * following a symlink planted at the path (the daemon is root), replacing a regular file a crashed run left.
 */
final class Pidfile implements AutoCloseable {
    private final Path path;
    private final String pid = ProcessHandle.current().pid() + "\n";

    private Pidfile(Path path) {
        this.path = path;
    }

    static Pidfile write(Path path) throws StartupException {
        if (Files.isSymbolicLink(path)) throw new StartupException("refusing the pidfile " + path + ": it is a symlink");
        int fd;
        try {
            fd = Posix.open(path.toString(), Posix.O_WRONLY | Posix.O_CREAT | Posix.O_TRUNC | Posix.O_CLOEXEC
                    | Posix.O_NOFOLLOW, 0644);
        } catch (PosixException e) {
            throw new StartupException("cannot write the pidfile " + path + ": " + e.getMessage(), e);
        }
        Pidfile p = new Pidfile(path);
        try {
            Files.writeString(Path.of("/proc/self/fd/" + fd), p.pid, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new StartupException("cannot write the pidfile " + path + ": " + e.getMessage(), e);
        } finally {
            try {
                Posix.close(fd);
            } catch (PosixException ignored) {
                // the write above is what matters
            }
        }
        return p;
    }

    /** Removes the file if it still holds this daemon's pid (another daemon may have taken the path since). */
    @Override
    public void close() {
        try {
            if (Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) && Files.readString(path).equals(pid)) {
                Files.delete(path);
            }
        } catch (IOException ignored) {
            // a pidfile that cannot be removed is stale, and says so by its pid
        }
    }
}

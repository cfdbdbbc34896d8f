package org.vfioexport.app;

import org.vfioexport.ffm.posix.FileFd;
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
        FileFd fd;
        try {
            fd = FileFd.open(path, FileFd.O_WRONLY | FileFd.O_CREAT | FileFd.O_TRUNC | FileFd.O_NOFOLLOW, 0644);
        } catch (PosixException e) {
            throw new StartupException("cannot write the pidfile " + path + ": " + e.getMessage(), e);
        }
        Pidfile p = new Pidfile(path);
        try {
            byte[] pid = p.pid.getBytes(StandardCharsets.US_ASCII);
            long n = fd.pwrite(pid, 0); // through the fd opened without following a link, never by path again
            if (n != pid.length) throw new IOException("short write (" + n + " of " + pid.length + " bytes)");
        } catch (IOException e) {
            throw new StartupException("cannot write the pidfile " + path + ": " + e.getMessage(), e);
        } finally {
            FileFd.closeQuietly(fd); // the write above is what matters
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

package org.vfioexport.app;

import org.vfioexport.ffm.posix.FileFd;
import org.vfioexport.ffm.posix.FileStat;
import org.vfioexport.ffm.posix.PosixException;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The directory that holds the socket and its lock file, made safe for a root daemon to create files in.
 *
 * <p>Missing directories are created with mode 0755 ({@code mkdir} never follows a symlink at the path's end).
 * The directory itself must then be owned by root or by the daemon's uid, and must not be writable by group or
 * others unless it is sticky (like {@code /tmp}, where only a file's owner may replace it). A symlink as its last
 * component is followed only when root or the daemon's uid owns it (as the kernel's {@code protected_symlinks}
 * does in sticky directories), so {@code /var/run -> /run} works and a link another user planted does not.
 * Directories above it are the administrator's choice and are not judged.
 *
 * <p>The result is an open fd of the checked directory: files are then opened relative to it ({@code openat}),
 * so the directory cannot be swapped between the check and the use.
 */
final class SocketDirectory {
    private SocketDirectory() {}

    /** Creates {@code dir} if missing, checks it, and returns it open (read-only, close-on-exec); the caller closes it. */
    static FileFd open(Path dir, int daemonUid) throws StartupException {
        create(dir);
        try {
            if (Files.isSymbolicLink(dir)) {
                int linkOwner = (Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
                if (!trusted(linkOwner, daemonUid)) {
                    throw new StartupException("refusing the socket directory " + dir + ": it is a symlink owned by uid "
                            + linkOwner + " (only root's or the daemon's own symlinks are followed)");
                }
            }
        } catch (IOException e) {
            throw new StartupException("cannot inspect the socket directory " + dir + ": " + e.getMessage(), e);
        }
        FileFd fd;
        try {
            fd = FileFd.open(dir, FileFd.O_RDONLY, 0);
        } catch (PosixException e) {
            throw new StartupException("cannot open the socket directory " + dir + ": " + e.errnoDescription(), e);
        }
        try {
            FileStat st = fd.stat();
            String problem = problemWith(st, daemonUid);
            if (problem != null) throw new StartupException("refusing the socket directory " + dir + ": " + problem);
            return fd;
        } catch (StartupException | RuntimeException e) {
            FileFd.closeQuietly(fd);
            throw e;
        } catch (PosixException e) {
            FileFd.closeQuietly(fd);
            throw new StartupException("cannot inspect the socket directory " + dir + ": " + e.errnoDescription(), e);
        }
    }

    /** Null when the rule holds, else what breaks it. */
    private static String problemWith(FileStat st, int daemonUid) {
        if (!st.isDirectory()) return "it is not a directory";
        if (!trusted(st.uid(), daemonUid)) {
            return "it is owned by uid " + st.uid() + " (it must be root's" + (daemonUid == 0 ? "" : " or uid " + daemonUid + "'s")
                    + ": its owner could replace the socket and the lock)";
        }
        boolean sticky = (st.mode() & FileStat.S_ISVTX) != 0;
        if ((st.mode() & 022) != 0 && !sticky) {
            return "its mode " + Integer.toOctalString(st.mode() & 07777) + " lets group or others replace the socket "
                    + "and the lock (make it 0755, or sticky like /tmp)";
        }
        return null;
    }

    private static boolean trusted(int uid, int daemonUid) {
        return uid == 0 || uid == daemonUid;
    }

    /** Creates the missing directories of the absolute path {@code dir}, from the top, each with mode 0755 (less the umask). */
    private static void create(Path dir) throws StartupException {
        Path p = dir.getRoot();
        for (Path name : dir) {
            p = p.resolve(name);
            if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) continue;
            try {
                Files.createDirectory(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
            } catch (FileAlreadyExistsException e) {
                // created meanwhile by someone else: the socket directory itself is judged after this
            } catch (IOException e) {
                throw new StartupException("cannot create the socket directory " + p + ": " + e.getMessage(), e);
            }
        }
    }
}

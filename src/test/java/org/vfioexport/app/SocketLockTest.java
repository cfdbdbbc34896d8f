package org.vfioexport.app;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The socket's lock file and directory are no way in for whoever can write near them: a planted symlink, hard
 * link, FIFO or directory is refused and nothing is written through it; the directory must be safe to create in.
 */
class SocketLockTest {
    private static final String PID = ProcessHandle.current().pid() + "\n";

    @TempDir
    Path dir;

    private Path socket() {
        return dir.resolve("vfio-export.sock");
    }

    private Path lock() {
        return dir.resolve("vfio-export.sock.lock");
    }

    private static String refusal(Path socket) {
        return assertThrows(StartupException.class, () -> SocketLock.acquire(socket).close()).getMessage();
    }

    private static void run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), String.join(" ", command) + " did not finish");
        assertEquals(0, p.exitValue(), String.join(" ", command) + ": " + out);
    }

    private static void assumeRoot() {
        Assumptions.assumeTrue(Daemon.daemonUid() == 0, "needs root to give files to another uid");
    }

    @Test
    void aFreshLockFileHoldsThePid() throws Exception {
        try (SocketLock l = SocketLock.acquire(socket())) {
            assertEquals(lock(), l.path());
            assertEquals(PID, Files.readString(lock()));
            assertTrue(Files.isRegularFile(lock(), LinkOption.NOFOLLOW_LINKS));
        }
        assertTrue(Files.exists(lock()), "the lock file stays after release");
    }

    @Test
    void aStaleLockFileIsReusedAndItsOldContentReplaced() throws Exception {
        Files.writeString(lock(), "1234567890123456789\nleft by a crashed run\n");
        try (SocketLock l = SocketLock.acquire(socket())) {
            assertEquals(PID, Files.readString(lock()), "truncated, then the pid");
        }
        try (SocketLock again = SocketLock.acquire(socket())) {
            assertEquals(PID, Files.readString(lock()));
        }
    }

    @Test
    void aHeldLockIsAClearErrorNamingItsHolder() throws Exception {
        try (SocketLock first = SocketLock.acquire(socket())) {
            String m = refusal(socket());
            assertTrue(m.contains("another vfio-exportd (pid " + PID.trim() + ") holds " + lock()), m);
            assertEquals(PID, Files.readString(lock()), "the holder's pid is left alone");
        }
    }

    @Test
    void aSymlinkPlantedAsTheLockIsRefusedAndItsTargetUntouched() throws Exception {
        Path target = dir.resolve("precious");
        Files.writeString(target, "do not overwrite\n");
        Files.createSymbolicLink(lock(), target);
        String m = refusal(socket());
        assertTrue(m.contains("refusing the lock file " + lock() + ": it is a symbolic link"), m);
        assertEquals("do not overwrite\n", Files.readString(target));
        assertTrue(Files.isSymbolicLink(lock()), "the link is reported, not removed");
    }

    @Test
    void aDanglingSymlinkDoesNotCreateItsTarget() throws Exception {
        Path target = dir.resolve("created-through-the-link");
        Files.createSymbolicLink(lock(), target);
        String m = refusal(socket());
        assertTrue(m.contains("it is a symbolic link"), m);
        assertFalse(Files.exists(target, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void aHardLinkToAnotherFileIsRefusedAndThatFileUntouched() throws Exception {
        Path target = dir.resolve("precious");
        Files.writeString(target, "do not overwrite\n");
        Files.createLink(lock(), target);
        String m = refusal(socket());
        assertTrue(m.contains("refusing the lock file " + lock() + ": it has 2 hard links"), m);
        assertEquals("do not overwrite\n", Files.readString(target));
    }

    @Test
    void aFifoOrADirectoryAsTheLockIsRefused() throws Exception {
        run("mkfifo", lock().toString());
        String m = refusal(socket());
        assertTrue(m.contains("refusing the lock file " + lock() + ": it is not a regular file"), m);
        Files.delete(lock());
        Files.createDirectory(lock());
        m = refusal(socket());
        assertTrue(m.contains("refusing the lock file " + lock() + ": it is a directory"), m);
    }

    @Test
    void aLockFileOfAnotherUidIsRefused() throws Exception {
        assumeRoot();
        Files.writeString(lock(), "");
        run("chown", "65534:65534", lock().toString());
        String m = refusal(socket());
        assertTrue(m.contains("refusing the lock file " + lock() + ": it is owned by uid 65534"), m);
        assertEquals("", Files.readString(lock()));
    }

    @Test
    void missingDirectoriesAreCreatedWithoutGroupOrOtherWrite() throws Exception {
        Path socket = dir.resolve("a/b/c/vfio-export.sock");
        try (SocketLock l = SocketLock.acquire(socket)) {
            for (Path p = socket.getParent(); !p.equals(dir); p = p.getParent()) {
                assertTrue(Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS), p.toString());
                int mode = (Integer) Files.getAttribute(p, "unix:mode");
                assertEquals(0, mode & 022, p + " mode " + Integer.toOctalString(mode));
            }
        }
    }

    @Test
    void aGroupOrOtherWritableDirectoryIsRefusedUnlessSticky() throws Exception {
        Path shared = Files.createDirectory(dir.resolve("shared"));
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString("rwxrwxr-x"));
        String m = refusal(shared.resolve("s.sock"));
        assertTrue(m.contains("refusing the socket directory " + shared + ": its mode 775"), m);
        assertFalse(Files.exists(shared.resolve("s.sock.lock")), "nothing created in it");
        run("chmod", "1777", shared.toString()); // like /tmp: only a file's owner may replace it
        try (SocketLock l = SocketLock.acquire(shared.resolve("s.sock"))) {
            assertEquals(PID, Files.readString(shared.resolve("s.sock.lock")));
        }
    }

    @Test
    void aDirectoryOfAnotherUidIsRefused() throws Exception {
        assumeRoot();
        Path theirs = Files.createDirectory(dir.resolve("theirs"));
        run("chown", "65534:65534", theirs.toString());
        String m = refusal(theirs.resolve("s.sock"));
        assertTrue(m.contains("refusing the socket directory " + theirs + ": it is owned by uid 65534"), m);
        assertFalse(Files.exists(theirs.resolve("s.sock.lock")));
    }

    @Test
    void aSymlinkedDirectoryIsFollowedOnlyWhenItsLinkIsTrusted() throws Exception {
        Path real = Files.createDirectory(dir.resolve("real"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), real); // like /var/run -> /run
        try (SocketLock l = SocketLock.acquire(link.resolve("s.sock"))) {
            assertEquals(PID, Files.readString(real.resolve("s.sock.lock")));
        }
        assumeRoot();
        Path planted = Files.createSymbolicLink(dir.resolve("planted"), real);
        run("chown", "-h", "65534:65534", planted.toString());
        String m = refusal(planted.resolve("s.sock"));
        assertTrue(m.contains("refusing the socket directory " + planted + ": it is a symlink owned by uid 65534"), m);
    }

    @Test
    void aFileWhereTheDirectoryShouldBeIsAClearError() throws IOException {
        Files.writeString(dir.resolve("file"), "");
        String m = refusal(dir.resolve("file/s.sock"));
        assertTrue(m.contains(dir.resolve("file").toString()), m);
    }
}

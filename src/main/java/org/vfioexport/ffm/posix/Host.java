package org.vfioexport.ffm.posix;

import java.nio.file.Path;

/** What the daemon asks of its host outside any fd it keeps: limits, links, its environment, sd_notify. */
public final class Host {
    private Host() {}

    /** The soft RLIMIT_NOFILE: the most fds this process may hold; -1 when unlimited. */
    public static long openFileLimit() throws PosixException {
        return Posix.getrlimit(Posix.RLIMIT_NOFILE).soft();
    }

    /** readlink(2): the target of a link, e.g. {@code /proc/<pid>/exe}. */
    public static String readlink(Path link) throws PosixException {
        return Posix.readlink(link.toString());
    }

    /** Removes {@code name} from the C environment (what native code and exec'd children see). */
    public static void unsetenv(String name) {
        Posix.unsetenv(name);
    }

    /** One datagram to the AF_UNIX datagram socket at {@code path} ({@code @} for abstract), from a fresh socket. */
    public static void sendDatagram(String path, byte[] message) throws PosixException {
        Posix.sendDatagram(path, message);
    }
}

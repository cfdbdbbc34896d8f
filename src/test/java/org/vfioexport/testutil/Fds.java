package org.vfioexport.testutil;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Counts this process's open file descriptors, the way leak checks do: entries of /proc/self/fd. */
public final class Fds {
    private Fds() {}

    public static long open() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count() - 1; // the directory stream itself
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }
}

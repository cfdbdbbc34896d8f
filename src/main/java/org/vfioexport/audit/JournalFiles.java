package org.vfioexport.audit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The journal's files: the current one ({@code audit.jsonl}) and the rotated ones, {@code .1} (newest) to
 * {@code .keep} (oldest). Rotation renames each one step older and deletes what falls off the end; a rename is
 * atomic, so a crash during rotation loses no record (at worst one file name is skipped).
 */
final class JournalFiles {
    private final Path current;
    private final int keep;

    JournalFiles(Path current, int keep) {
        this.current = current;
        this.keep = keep;
    }

    Path current() {
        return current;
    }

    /** File {@code i}: 0 is the current one, 1..keep the rotated ones. */
    Path file(int i) {
        return i == 0 ? current : current.resolveSibling(current.getFileName() + "." + i);
    }

    int keep() {
        return keep;
    }

    /**
     * Current becomes {@code .1}, {@code .1} becomes {@code .2}, ..., {@code .keep} is deleted. Only regular files
     * are moved or deleted: anything else in the way (a directory, a symlink) makes the rotation fail instead.
     */
    void rotate() throws IOException {
        if (Files.isRegularFile(file(keep), LinkOption.NOFOLLOW_LINKS)) Files.delete(file(keep));
        for (int i = keep - 1; i >= 0; i--) {
            Path from = file(i);
            if (Files.isRegularFile(from, LinkOption.NOFOLLOW_LINKS)) {
                Files.move(from, file(i + 1), StandardCopyOption.ATOMIC_MOVE);
            }
        }
    }

    /** The files that exist, oldest first (the current one last). */
    List<Path> existingOldestFirst() {
        List<Path> out = new ArrayList<>();
        for (int i = keep; i >= 0; i--) {
            if (Files.isRegularFile(file(i), LinkOption.NOFOLLOW_LINKS)) out.add(file(i));
        }
        return out;
    }
}

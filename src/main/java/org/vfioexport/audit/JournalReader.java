package org.vfioexport.audit;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Reads journal files line by line. A line that is not a JSON object is skipped: only the last line of a file
 * can be so, torn by a host crash in the middle of a write.
 */
final class JournalReader {
    private JournalReader() {}

    /** Hands each record of {@code file} to {@code sink} until it returns false; false if it did. */
    static boolean forEach(FileChannel file, Predicate<JsonObject> sink) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(Channels.newInputStream(file), StandardCharsets.UTF_8),
                1 << 16);
        String line;
        while ((line = r.readLine()) != null) {
            JsonObject record = parse(line);
            if (record != null && !sink.test(record)) return false;
        }
        return true;
    }

    static boolean forEach(Path file, Predicate<JsonObject> sink) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            return forEach(ch, sink);
        } catch (NoSuchFileException e) {
            return true; // rotated away meanwhile
        }
    }

    static JsonObject parse(String line) {
        if (line.isEmpty() || line.charAt(0) != '{') return null;
        try {
            return new JsonObject(line);
        } catch (DecodeException e) {
            return null;
        }
    }

    /**
     * Opens every file of {@code files}, newest first, and returns them oldest first: reading them in that order
     * gives the records in {@code seq} order. A rotation while they are opened can make one file appear twice;
     * the reader then skips records whose {@code seq} is not above the last one it took. The caller closes them.
     */
    static List<FileChannel> openAllOldestFirst(JournalFiles files) throws IOException {
        List<FileChannel> newestFirst = new ArrayList<>();
        try {
            for (int i = 0; i <= files.keep(); i++) {
                try {
                    newestFirst.add(FileChannel.open(files.file(i), StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS));
                } catch (NoSuchFileException e) {
                    // not (yet) there
                }
            }
        } catch (IOException | RuntimeException e) {
            for (FileChannel ch : newestFirst) ch.close();
            throw e;
        }
        return newestFirst.reversed();
    }
}

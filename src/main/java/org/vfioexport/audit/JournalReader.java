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

    /** Hands each line of {@code file} to {@code sink} until it returns false; false if it did. */
    static boolean forEachLine(FileChannel file, Predicate<String> sink) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(Channels.newInputStream(file), StandardCharsets.UTF_8),
                1 << 16);
        String line;
        while ((line = r.readLine()) != null) {
            if (!sink.test(line)) return false;
        }
        return true;
    }

    static boolean forEachLine(Path file, Predicate<String> sink) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            return forEachLine(ch, sink);
        } catch (NoSuchFileException e) {
            return true; // rotated away meanwhile
        }
    }

    private static final String PREFIX = "{\"ts\":\"";
    private static final int TS_END = PREFIX.length() + 24;
    private static final String SEQ = "\",\"seq\":";

    /** The {@code ts} of a line in the writer's format ({@code {"ts":"...","seq":N,...}), or null. */
    static String tsOf(String line) {
        return line.startsWith(PREFIX) && line.startsWith(SEQ, TS_END) ? line.substring(PREFIX.length(), TS_END) : null;
    }

    /** The {@code seq} of a line in the writer's format, or -1. */
    static long seqOf(String line) {
        if (tsOf(line) == null) return -1;
        long seq = 0;
        int i = TS_END + SEQ.length(), digits = 0;
        for (char c; i < line.length() && (c = line.charAt(i)) >= '0' && c <= '9'; i++) {
            if (++digits > 18) return -1;
            seq = seq * 10 + (c - '0');
        }
        return digits == 0 ? -1 : seq;
    }

    /** The first {@code "name":"value"} of a line (value taken up to the next quote), or null. */
    static String stringField(String line, String name) {
        String key = "\"" + name + "\":\"";
        int at = line.indexOf(key);
        if (at < 0) return null;
        int from = at + key.length();
        int to = line.indexOf('"', from);
        return to < 0 ? null : line.substring(from, to);
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

package org.vfioexport.audit;

import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The writer thread when the file system says no: it loses records, says so, and never stalls its callers. */
class JournalWriterTest {
    private static final Who DAEMON = new Who(1, 0, 0, null);

    @TempDir
    Path dir;

    private static JsonObject record(int i) {
        return AuditRecord.of(AuditRecord.EXPORT_CREATE, DAEMON).put("export_id", "x/" + i).put("ok", true);
    }

    @Test
    void aWriteThatFailsLosesItsRecordsButEveryCallerGetsItsAnswer() throws Exception {
        Path full = Path.of("/dev/full"); // every write(2) fails with ENOSPC
        Assumptions.assumeTrue(Files.isWritable(full), "needs /dev/full");
        JournalWriter w = new JournalWriter(new JournalFiles(full, 1), new AuditSettings(true, full, 1 << 20, 1, 200),
                DAEMON, 0);
        List<Future<Void>> all = new ArrayList<>();
        for (int i = 0; i < 100; i++) all.add(w.append(record(i)));
        Future.all(all).await(10, TimeUnit.SECONDS); // completes although nothing could be written
        w.stop(AuditRecord.of(AuditRecord.DAEMON_STOP, DAEMON), 5_000);
    }

    @Test
    void aRotationThatCannotRenameGoesOnWritingAndTriesAgainLater() throws Exception {
        Path journal = dir.resolve("a.jsonl");
        Path rotated = dir.resolve("a.jsonl.1");
        Files.createDirectories(rotated.resolve("in-the-way")); // rename(2) onto a non-empty directory fails
        JournalWriter w = new JournalWriter(new JournalFiles(journal, 20), new AuditSettings(true, journal, 4096, 20, 200),
                DAEMON, 0);
        List<Future<Void>> all = new ArrayList<>();
        for (int i = 0; i < 50; i++) all.add(w.append(record(i)));
        Future.all(all).await(10, TimeUnit.SECONDS);
        assertTrue(Files.size(journal) > 4096, "written on past max_bytes");
        assertFalse(Files.readString(journal).contains("journal.rotated"), "no checkpoint without a rotation");
        Files.delete(rotated.resolve("in-the-way"));
        Files.delete(rotated);
        for (int i = 50; i < 150; i++) all.add(w.append(record(i)));
        w.stop(AuditRecord.of(AuditRecord.DAEMON_STOP, DAEMON), 5_000);

        assertTrue(Files.isRegularFile(rotated), "rotated once the way was free");
        assertEquals("journal.rotated", new JsonObject(Files.readAllLines(journal).get(0)).getString("event"));
        List<Path> files = new JournalFiles(journal, 20).existingOldestFirst();
        // every record here is a live export, so each checkpoint is larger than max_bytes: it is not counted,
        // or every record after it would rotate again
        assertTrue(files.size() <= 8, files.size() + " files for about 20 KiB of records");
        List<String> lines = new ArrayList<>();
        for (Path p : files) lines.addAll(Files.readAllLines(p));
        long seq = 0;
        int creates = 0;
        for (String l : lines) {
            JsonObject r = new JsonObject(l);
            assertEquals(++seq, r.getLong("seq"), "no record lost, none out of order");
            if ("export.create".equals(r.getString("event"))) creates++;
        }
        assertEquals(150, creates);
        assertEquals("daemon.stop", new JsonObject(lines.get(lines.size() - 1)).getString("event"));
    }
}

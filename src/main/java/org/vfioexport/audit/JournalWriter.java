package org.vfioexport.audit;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.json.JsonObject;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.events.JsonEncoding;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The one thread that writes the journal. Event loops hand it records through a bounded queue and never wait
 * on the file; it takes whatever has queued up, stamps each record ({@code ts}, {@code seq}), writes the batch
 * with one {@code write(2)} on an {@code O_APPEND} file, and completes the records' futures.
 *
 * <p>Group commit: after a write, the file is fsynced once {@code fsync_ms} have passed since the first record
 * not yet synced (so at most every {@code fsync_ms} under load, and never when idle), before a rotation, and at
 * stop. With {@code fsync_ms} 0 each batch is fsynced before its futures complete.
 *
 * <p>A record that finds the queue full, or whose write fails, is lost, never waited for: the journal must not
 * stall the service. The next record written after a loss is a {@code journal.lost} record counting them, and
 * {@code seq} has a gap there.
 */
final class JournalWriter {
    private static final Logger log = LoggerFactory.getLogger(JournalWriter.class);
    static final int MAX_QUEUED = 65_536;
    private static final int BATCH = 1024;
    private static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
            .withZone(ZoneOffset.UTC);

    private sealed interface Task permits Append, Barrier, Stop {}

    private record Append(JsonObject record, Promise<Void> done) implements Task {}

    /** Completes once every record queued before it is written. */
    private record Barrier(Promise<Void> done) implements Task {}

    private record Stop(JsonObject last, Promise<Void> done) implements Task {}

    private final BlockingQueue<Task> queue = new LinkedBlockingQueue<>(MAX_QUEUED);
    private final JournalFiles files;
    private final long maxBytes;
    private final long fsyncNanos;
    private final Who daemon;
    private final RunState state = new RunState();
    private final AtomicLong lost = new AtomicLong();
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream(1 << 16);
    private int pendingRecords;
    /** The count of a {@code journal.lost} record among the pending ones (0: none): if that write fails too, it is carried on. */
    private long pendingLostCount;
    private final Thread thread;
    private FileChannel out;
    private long size;
    /** Bytes of the checkpoint at the top of the current file, which max_bytes does not count. */
    private long checkpointBytes;
    /** After a failed rotation, the size at which to try again (another max_bytes on): not at every record. */
    private long retryRotationAt;
    private long seq;
    private long unsyncedSince = -1;
    private long lastTsMillis = Long.MIN_VALUE;
    private String lastTs;
    private String failing;
    private boolean writeFailing;

    JournalWriter(JournalFiles files, AuditSettings settings, Who daemon, long lastSeq) throws IOException {
        this.files = files;
        this.maxBytes = settings.maxBytes();
        this.fsyncNanos = TimeUnit.MILLISECONDS.toNanos(settings.fsyncMs());
        this.daemon = daemon;
        this.seq = lastSeq;
        open(true);
        thread = Thread.ofPlatform().name("vfio-export-audit").daemon(true).unstarted(this::run);
        thread.start();
    }

    /** Queues {@code record}; the future completes once it is written (and fsynced with fsync_ms 0), or lost. */
    Future<Void> append(JsonObject record) {
        Promise<Void> done = Promise.promise();
        if (!queue.offer(new Append(record, done))) {
            lost.incrementAndGet();
            done.complete();
        }
        return done.future();
    }

    /** Completes once everything queued before it is written. */
    Future<Void> barrier() {
        Promise<Void> done = Promise.promise();
        if (!queue.offer(new Barrier(done))) done.fail(new IllegalStateException("the audit journal's queue is full"));
        return done.future();
    }

    /** Writes {@code last}, fsyncs and closes; waits at most {@code timeoutMs} for the queue to drain. */
    void stop(JsonObject last, long timeoutMs) {
        try {
            if (!queue.offer(new Stop(last, Promise.promise()), timeoutMs, TimeUnit.MILLISECONDS)) {
                log.error("audit journal: its queue did not drain at stop; the stop record is lost");
                return;
            }
            thread.join(timeoutMs);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        List<Task> batch = new ArrayList<>(BATCH);
        List<Promise<Void>> written = new ArrayList<>(BATCH);
        while (true) {
            batch.clear();
            written.clear();
            try {
                Task first = unsyncedSince < 0 ? queue.take()
                        : queue.poll(Math.max(0, unsyncedSince + fsyncNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
                if (first != null) {
                    batch.add(first);
                    queue.drainTo(batch, BATCH - 1);
                }
            } catch (InterruptedException e) {
                return;
            }
            Stop stop = null;
            try {
                long lostBefore = lost.getAndSet(0);
                if (lostBefore > 0) {
                    stamp(AuditRecord.of(AuditRecord.JOURNAL_LOST, daemon).put("count", lostBefore));
                    pendingLostCount = lostBefore;
                }
                for (Task t : batch) {
                    switch (t) {
                        case Append a -> {
                            written.add(a.done());
                            stamp(a.record());
                        }
                        case Barrier b -> written.add(b.done());
                        case Stop s -> {
                            stop = s;
                            written.add(s.done());
                            stamp(s.last());
                        }
                    }
                }
                flush();
                if (unsyncedSince >= 0 && (stop != null || fsyncNanos == 0 || System.nanoTime() - unsyncedSince >= fsyncNanos)) sync();
            } catch (RuntimeException e) {
                // a bug must not stop the journal, nor leave requests waiting for their records
                report("an unexpected error: " + e);
            } finally {
                for (Promise<Void> p : written) p.tryComplete();
            }
            if (stop != null) {
                closeQuietly();
                return;
            }
        }
    }

    /** Gives {@code record} its ts and seq and adds its line to the pending batch, rotating first if it would not fit. */
    private void stamp(JsonObject record) {
        Line line;
        try {
            line = line(record);
        } catch (RuntimeException e) { // a value JSON cannot encode: a bug, reported, the record lost
            seq--;
            lost.incrementAndGet();
            report("a record could not be encoded: " + e);
            return;
        }
        // max_bytes bounds the records after the checkpoint: a large checkpoint (many live exports) must not make
        // every following record rotate again
        long used = size + pending.size() - checkpointBytes;
        if (used + line.bytes().length > maxBytes && used > 0 && used >= retryRotationAt) {
            seq--; // the checkpoint comes first, and takes the next seq
            rotate();
            line = line(record);
        }
        pending.writeBytes(line.bytes());
        pendingRecords++;
        state.apply(line.json());
    }

    private record Line(JsonObject json, byte[] bytes) {}

    private Line line(JsonObject record) {
        JsonObject json = new JsonObject().put("ts", timestamp()).put("seq", ++seq);
        json.getMap().putAll(record.getMap());
        return new Line(json, (JsonEncoding.encode(json) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Now, to the millisecond: formatted once per millisecond, not once per record (this thread alone calls it). */
    private String timestamp() {
        long ms = System.currentTimeMillis();
        if (ms != lastTsMillis) {
            lastTs = TS.format(Instant.ofEpochMilli(ms));
            lastTsMillis = ms;
        }
        return lastTs;
    }

    /**
     * The current file becomes {@code .1}; the new one starts with the checkpoint of this run. If the renames
     * fail, writing goes on in the current file (past max_bytes), and rotation is tried again later.
     */
    private void rotate() {
        flush();
        sync(); // the rotated file is complete on disk
        try {
            files.rotate();
        } catch (IOException e) {
            report("rotating " + files.current() + " failed: " + e + "; writing on past max_bytes");
            retryRotationAt = size + pending.size() - checkpointBytes + maxBytes;
            return;
        }
        retryRotationAt = 0;
        closeQuietly();
        try {
            open(false);
        } catch (IOException e) {
            report("opening " + files.current() + " failed: " + e.getMessage());
            return;
        }
        byte[] bytes = line(state.checkpoint(daemon)).bytes();
        pending.writeBytes(bytes);
        pendingRecords++;
        checkpointBytes = size + bytes.length;
    }

    /** Opens the current file for appending (mode 0640); at start, a torn last line is ended first. */
    private void open(boolean atStart) throws IOException {
        Path p = files.current();
        out = FileChannel.open(p, java.util.Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND, LinkOption.NOFOLLOW_LINKS),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r-----")));
        size = out.size();
        checkpointBytes = 0;
        if (atStart && size > 0 && !endsWithNewline(p)) {
            out.write(ByteBuffer.wrap(new byte[] {'\n'})); // the next record must not continue a torn line
            size++;
        }
    }

    private boolean endsWithNewline(Path p) throws IOException {
        try (FileChannel r = FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            ByteBuffer last = ByteBuffer.allocate(1);
            r.read(last, r.size() - 1);
            return last.get(0) == '\n';
        }
    }

    private void flush() {
        if (pending.size() == 0) return;
        byte[] bytes = pending.toByteArray();
        long records = pendingLostCount > 0 ? pendingRecords - 1 + pendingLostCount : pendingRecords;
        pending.reset();
        pendingRecords = 0;
        pendingLostCount = 0;
        try {
            if (out == null) open(false);
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) out.write(b);
            size += bytes.length;
            if (unsyncedSince < 0) unsyncedSince = System.nanoTime();
            if (writeFailing) {
                log.info("audit journal: writing {} again", files.current());
                writeFailing = false;
                failing = null;
            }
        } catch (IOException e) {
            lost.addAndGet(records);
            writeFailing = true;
            report("writing " + files.current() + " failed: " + e.getMessage() + "; records are being lost");
            closeQuietly();
        }
    }

    private void sync() {
        try {
            if (out != null) out.force(false);
        } catch (IOException e) {
            report("fsync of " + files.current() + " failed: " + e.getMessage());
        }
        unsyncedSince = -1;
    }

    /** One log line per kind of failure, not one per record. */
    private void report(String what) {
        if (what.equals(failing)) return;
        failing = what;
        log.error("audit journal: {}", what);
    }

    private void closeQuietly() {
        if (out == null) return;
        try {
            out.close();
        } catch (IOException e) {
            report("closing " + files.current() + " failed: " + e.getMessage());
        }
        out = null;
    }
}

package org.vfioexport.audit;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.json.JsonObject;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The audit journal of one daemon run: opened at start (after the crash report on the run before), written by
 * {@link JournalWriter}'s thread, searched on a thread of its own, closed at stop with {@code daemon.stop}.
 * One daemon at a time writes a journal: {@code <journal>.lock} is held with an exclusive lock meanwhile.
 */
public final class AuditJournal implements Audit {
    private static final Logger log = LoggerFactory.getLogger(AuditJournal.class);
    /** Queries waiting or running at once; more are refused (each may read the whole retained journal). */
    public static final int MAX_QUERIES = 16;
    /** The journal's share of the daemon's stop (which has 2 s in all): the stop record and the last fsync. */
    private static final long STOP_TIMEOUT_MS = 500;

    private final AuditSettings settings;
    private final JournalFiles files;
    private final FileChannel lockFile;
    private final JournalWriter writer;
    private final Who daemon;
    private final PreviousRun previous;
    private final ExecutorService queries = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().name("vfio-export-audit-query").daemon(true).factory());
    private final AtomicInteger queriesInFlight = new AtomicInteger();
    private final RefusalThrottle refusals = new RefusalThrottle();
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    private AuditJournal(AuditSettings settings, JournalFiles files, FileChannel lockFile, JournalWriter writer,
                         Who daemon, PreviousRun previous) {
        this.settings = settings;
        this.files = files;
        this.lockFile = lockFile;
        this.writer = writer;
        this.daemon = daemon;
        this.previous = previous;
    }

    /**
     * Opens the journal of {@code settings}, reads what it says about the previous run, and writes
     * {@code daemon.start} (with {@code startFields}); if the previous run died, logs it (a warning) and writes
     * {@code daemon.recovered}.
     */
    public static AuditJournal open(AuditSettings settings, Who daemon, JsonObject startFields) throws IOException {
        Path path = settings.path().toAbsolutePath();
        Files.createDirectories(path.getParent());
        FileChannel lock = lock(path);
        try {
            JournalFiles files = new JournalFiles(path, settings.keep());
            checkOwnFile(path, daemon.uid());
            PreviousRun previous = PreviousRun.read(files);
            JournalWriter writer = new JournalWriter(files, settings, daemon, previous.lastSeq());
            AuditJournal j = new AuditJournal(settings, files, lock, writer, daemon, previous);
            j.append(AuditRecord.of(AuditRecord.DAEMON_START, daemon).mergeIn(startFields));
            if (previous.died()) {
                log.warn("{}", previous.describe());
                j.append(previous.record(daemon));
            }
            return j;
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
    }

    /** An exclusive lock on {@code <journal>.lock}: a second daemon writing the same journal is refused. */
    private static FileChannel lock(Path journal) throws IOException {
        Path lockPath = journal.resolveSibling(journal.getFileName() + ".lock");
        FileChannel ch = FileChannel.open(lockPath, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                LinkOption.NOFOLLOW_LINKS);
        FileLock held;
        try {
            held = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            held = null; // this very process already writes it (two daemons in one JVM)
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        if (held == null) {
            ch.close();
            throw new IOException("another vfio-exportd writes the audit journal " + journal + " (" + lockPath
                    + " is locked); give each daemon its own audit.path");
        }
        return ch;
    }

    /** An existing journal must be a regular file of the daemon's user with one name: never written through a link. */
    private static void checkOwnFile(Path p, int uid) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        int owner = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int links = (Integer) Files.getAttribute(p, "unix:nlink", LinkOption.NOFOLLOW_LINKS);
        String problem = !a.isRegularFile() ? "it is not a regular file" : owner != uid ? "it is owned by uid " + owner
                : links != 1 ? "it has " + links + " hard links" : null;
        if (problem != null) throw new IOException("refusing the audit journal " + p + ": " + problem);
    }

    public PreviousRun previousRun() {
        return previous;
    }

    public AuditSettings settings() {
        return settings;
    }

    @Override
    public Future<Void> append(JsonObject record) {
        return writer.append(record);
    }

    @Override
    public Future<JsonObject> query(AuditQuery q) {
        if (queriesInFlight.incrementAndGet() > MAX_QUERIES) {
            queriesInFlight.decrementAndGet();
            return Future.failedFuture(new TooManyQueries());
        }
        Promise<JsonObject> p = Promise.promise();
        p.future().onComplete(ar -> queriesInFlight.decrementAndGet());
        writer.barrier().onComplete(ar -> {
            try {
                queries.execute(() -> {
                    try {
                        p.complete(q.run(files));
                    } catch (IOException | RuntimeException e) {
                        p.fail(e);
                    }
                });
            } catch (RejectedExecutionException e) {
                p.fail(new IllegalStateException("the audit journal is closed"));
            }
        });
        return p.future();
    }

    @Override
    public boolean enabled() {
        return true;
    }

    @Override
    public void refused(Who who, String method) {
        long suppressed = refusals.admit(Integer.toUnsignedLong(who.uid()), System.nanoTime());
        if (suppressed < 0) return;
        JsonObject r = AuditRecord.of(AuditRecord.CONNECTION_REFUSED, who).put("method", method);
        if (suppressed > 0) r.put("suppressed", suppressed);
        append(r);
    }

    @Override
    public void refusedConnection(Who who, String limit, int errorCode, String message) {
        long suppressed = refusals.admit(Integer.toUnsignedLong(who.uid()), System.nanoTime());
        if (suppressed < 0) return;
        JsonObject r = AuditRecord.outcome(AuditRecord.of(AuditRecord.CONNECTION_REFUSED, who).put("limit", limit),
                errorCode, message);
        if (suppressed > 0) r.put("suppressed", suppressed);
        append(r);
    }

    /** Writes {@code daemon.stop}, fsyncs, closes, and lets another daemon have the journal. Once only. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        queries.shutdownNow();
        writer.stop(AuditRecord.of(AuditRecord.DAEMON_STOP, daemon), STOP_TIMEOUT_MS);
        try {
            lockFile.close();
        } catch (IOException e) {
            log.error("audit journal: closing its lock: {}", e.getMessage());
        }
    }

    /** More than {@link #MAX_QUERIES} queries at once. */
    public static final class TooManyQueries extends RuntimeException {
        TooManyQueries() {
            super("too many audit queries at once (at most " + MAX_QUERIES + ")", null, false, false);
        }
    }
}

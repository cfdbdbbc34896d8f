package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * The kernel's scheduler of a {@link DeviceCore}, kept as the measured baseline: a per-device read-write lock (the
 * {@code memory_lock}) instead of message order. Every operation runs on the worker pool, because any of them may
 * wait for the lock: a shared one (an export, a final release) holds the read side from its first step to its last,
 * an exclusive one (a reset, a memory toggle, a close) the write side, its kernel calls included. Each step of the
 * core runs under the core's monitor, so that shared operations' steps do not overlap; kernel calls run outside it.
 * {@link #describe()} and the try-reset claim take only the monitor, on the caller's thread: like the message-order
 * scheduler's, they never wait for an operation.
 *
 * <p>The revocation handshake ({@link Step.Await}) waits on the operation's worker, write lock held, on the core's
 * monitor until the answer that settles it ({@link #quiesced} and the other watch steps notify) or the deadline:
 * a blocked thread, as the kernel's revoke blocks its caller under {@code memory_lock} while importers unmap.
 *
 * <p>The service runs {@link MessageOrderDevice}; this one runs with {@code --discipline lock}, for the load tests'
 * comparison, and under every device test.
 */
final class RwLockDevice implements ManagedDevice {
    private final Vertx vertx;
    private final DeviceCore core;
    private final ReentrantReadWriteLock memoryLock = new ReentrantReadWriteLock();

    RwLockDevice(Vertx vertx, OpenedDevice opened, DeviceEventLog log) {
        this.vertx = vertx;
        this.core = new DeviceCore(opened, log, this::queueFinalRelease);
    }

    @Override
    public String id() {
        return core.id();
    }

    DeviceCore core() {
        return core;
    }

    /** Runs {@code op} on a worker; the result comes back on the caller's context. */
    private <T> Future<T> submit(DeviceCore.Op<T> op) {
        ContextInternal caller = ContextInternal.current();
        Promise<T> p = caller != null ? caller.promise() : Promise.promise();
        vertx.<T>executeBlocking(() -> runHere(op), false).onComplete(p);
        return p.future();
    }

    /** On a worker: the whole operation under its side of the lock, each step under the core's monitor. */
    private <T> T runHere(DeviceCore.Op<T> op) throws Exception {
        Lock lock = op.exclusive() ? memoryLock.writeLock() : memoryLock.readLock();
        lock.lock();
        try {
            Step<T> s = step(op.start());
            while (true) {
                if (s instanceof Step.Call<T, ?> c) s = step(c.invoke());     // the kernel call: outside the monitor
                else if (s instanceof Step.Await<T> w) s = awaitHere(w);
                else break;
            }
            return switch (s) {
                case Step.Done<T> d -> d.value();
                case Step.Failed<T> f -> throw asException(f.cause());
                case Step.Call<T, ?> c -> throw new AssertionError("unreachable");
                case Step.Await<T> w -> throw new AssertionError("unreachable");
            };
        } finally {
            lock.unlock();
        }
    }

    /**
     * The handshake on this worker, the write lock held: waits on the core's monitor (released while waiting, so
     * answers get in) until the answers settle it or the deadline passes, then runs the next step under it.
     */
    private <T> Step<T> awaitHere(Step.Await<T> w) throws InterruptedException {
        synchronized (core) {
            long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(w.millis());
            long left;
            while (!core.handshakeSettled() && (left = end - System.nanoTime()) > 0) {
                TimeUnit.NANOSECONDS.timedWait(core, left);
            }
            return w.then().get();
        }
    }

    private <T> Step<T> step(Supplier<Step<T>> s) {
        synchronized (core) {
            return s.get();
        }
    }

    private static Exception asException(Throwable t) {
        if (t instanceof Exception e) return e;
        if (t instanceof Error e) throw e;
        return new RuntimeException(t);
    }

    @Override
    public Future<DeviceSnapshot> describe() {
        synchronized (core) {
            return Future.succeededFuture(core.describe());
        }
    }

    @Override
    public Future<Export> export(ExportRequest request) {
        return submit(core.export(request));
    }

    @Override
    public Future<Export> release(Export export, Cause cause) {
        ContextInternal caller = ContextInternal.current();
        Promise<Export> p = caller != null ? caller.promise() : Promise.promise();
        core.beginRelease(export, cause, p);
        return p.future();
    }

    /** Deferred like fput: the final release takes the lock on a worker, never in the thread that held it. */
    private void queueFinalRelease(Export e) {
        vertx.executeBlocking(() -> runHere(core.finalRelease(e)), false);
    }

    @Override
    public Future<ResetResult> reset(long quiesceMillis) {
        synchronized (core) {
            if (!core.claimReset()) return Future.failedFuture(core.busy());
        }
        return submit(core.reset(quiesceMillis));
    }

    @Override
    public Future<MemoryResult> setMemory(boolean enabled, long quiesceMillis) {
        return submit(core.setMemory(enabled, quiesceMillis));
    }

    // ---- watches: under the monitor, on the caller's thread; an answer wakes a waiting handshake -------------

    @Override
    public Future<Boolean> watch(Export export, Watcher w) {
        synchronized (core) {
            try {
                return Future.succeededFuture(core.watch(export, w));
            } catch (DeviceException e) {
                return Future.failedFuture(e);
            }
        }
    }

    @Override
    public Future<Boolean> unwatch(Export export, Watcher w) {
        synchronized (core) {
            boolean had = core.unwatch(export.id(), w);
            core.notifyAll();
            return Future.succeededFuture(had);
        }
    }

    @Override
    public Future<Void> quiesced(String exportId, Watcher w) {
        synchronized (core) {
            try {
                core.quiesced(exportId, w);
            } catch (DeviceException e) {
                return Future.failedFuture(e);
            }
            core.notifyAll();
            return Future.succeededFuture();
        }
    }

    @Override
    public void cutHandshakeShort() {
        synchronized (core) {
            core.cutHandshakeShort();
            core.notifyAll();
        }
    }

    @Override
    public void watcherGone(Watcher w) {
        synchronized (core) {
            core.watcherGone(w);
            core.notifyAll();
        }
    }

    @Override
    public Future<Void> close(Cause cause) {
        return submit(core.close(cause));
    }

    @Override
    public int exportCount() {
        return core.exportCount();
    }

    /** Threads waiting for either side of the lock (an estimate by its own account, exact once they are parked). */
    @Override
    public int waitingForAdmission() {
        return memoryLock.getQueueLength();
    }
}

package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;
import org.vfioexport.events.EventType;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.VfioDevice;

import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The kernel's design, for comparison: the same device logic as {@link DeviceVerticle}, guarded by a per-device
 * read-write lock (the {@code memory_lock}) instead of message order. Exports hold the read side across their
 * ioctl; resets, memory toggles, closes and final releases take the write side. Every operation runs on the
 * worker pool, because any of them may wait for the lock.
 *
 * <p>It exists for the load tests' "lock design" baseline ({@code --discipline lock}); the service runs
 * {@link DeviceVerticle}.
 */
final class LockedDevice implements ManagedDevice {
    private final Vertx vertx;
    private final OpenedDevice opened;
    private final VfioDevice device;
    private final DeviceEventLog log;
    private final ReentrantReadWriteLock memoryLock = new ReentrantReadWriteLock();
    private final Map<String, Export> exports = new ConcurrentHashMap<>();
    private final AtomicLong exportCounter = new AtomicLong();
    private final Object resetGate = new Object();
    private boolean resetRunning;                 // guarded by resetGate
    private volatile DeviceState state;           // written under the write lock
    private volatile boolean memoryEnabled;       // written under the write lock
    private volatile boolean closed;              // written under the write lock

    LockedDevice(Vertx vertx, OpenedDevice opened, DeviceEventLog log) {
        this.vertx = vertx;
        this.opened = opened;
        this.device = opened.device();
        this.memoryEnabled = opened.memoryEnabled();
        this.state = memoryEnabled ? DeviceState.READY : DeviceState.MEMORY_DISABLED;
        this.log = log;
    }

    @Override
    public String id() {
        return device.id();
    }

    private <T> Future<T> worker(Callable<T> call) {
        ContextInternal caller = ContextInternal.current();
        Promise<T> p = caller != null ? caller.promise() : Promise.promise();
        vertx.<T>executeBlocking(call, false).onComplete(p);
        return p.future();
    }

    private DeviceException unavailable() {
        return new DeviceException(DeviceException.Kind.UNAVAILABLE, id(), null, "device " + id() + " is closed");
    }

    @Override
    public Future<DeviceSnapshot> describe() {
        return worker(() -> opened.snapshot(state, memoryEnabled, log.head(), exports.size()));
    }

    @Override
    public Future<Export> export(ExportRequest request) {
        return worker(() -> {
            memoryLock.readLock().lock();
            try {
                if (closed) throw unavailable();
                DmaBuf buf = device.exportDmaBuf(DmaBufRequest.get((int) request.region(), request.ranges(),
                        request.openFlags()));
                ExportState s = memoryEnabled ? ExportState.LIVE : ExportState.REVOKED;
                String exportId = id() + "/" + exportCounter.incrementAndGet();
                // the log's monitor orders the stamp with other readers' stamps
                synchronized (log) {
                    Export e = new Export(exportId, id(), request.owner(), (int) request.region(), request.ranges(),
                            log.head() + 1, buf, s, this::finishReleaseLater);
                    exports.put(exportId, e);
                    log.append(EventType.EXPORT_CREATED, exportId, Cause.CLIENT, s.wire);
                    return e;
                }
            } finally {
                memoryLock.readLock().unlock();
            }
        });
    }

    @Override
    public Future<Export> release(Export export, Cause cause) {
        ContextInternal caller = ContextInternal.current();
        Promise<Export> p = caller != null ? caller.promise() : Promise.promise();
        boolean[] last = new boolean[1];
        if (!export.beginRelease(cause, p, last)) {
            p.fail(new DeviceException(DeviceException.Kind.NO_SUCH_EXPORT, id(), export.id(),
                    "export " + export.id() + " is already released"));
        } else if (last[0]) {
            finishReleaseLater(export);
        }
        return p.future();
    }

    /** Deferred like fput: the final release takes the write lock on a worker, never in the thread that held it. */
    private void finishReleaseLater(Export e) {
        vertx.executeBlocking(() -> {
            memoryLock.writeLock().lock();
            try {
                finishRelease(e);
            } finally {
                memoryLock.writeLock().unlock();
            }
            return null;
        }, false);
    }

    /** Under the write lock: closes the service's reference and completes the caller (see {@link DeviceVerticle}). */
    private void finishRelease(Export e) {
        releaseTakesEffect(e);
        e.closeBuffer();
        Promise<Export> p = e.releaseDone();
        if (p != null) p.complete(e);
    }

    /** Under the write lock: the release takes effect for the device, once (the same rule as {@link DeviceVerticle}). */
    private void releaseTakesEffect(Export e) {
        if (exports.remove(e.id()) == null) return;
        ExportPass.stampReleased(e, log);
    }

    private int pass(ExportState from, ExportState to, EventType type, Cause cause) {
        return ExportPass.run(exports.values(), from, to, type, cause, log, e -> {}, this::releaseTakesEffect);
    }

    private void state(DeviceState s, Cause cause) {
        if (state == s) return;
        state = s;
        log.append(EventType.DEVICE_STATE, null, cause, s.wire);
    }

    @Override
    public Future<ResetResult> reset() {
        synchronized (resetGate) {
            if (resetRunning) {
                return Future.failedFuture(new DeviceException(DeviceException.Kind.BUSY, id(), null,
                        "device " + id() + " is already resetting"));
            }
            resetRunning = true;
        }
        return worker(() -> {
            long t0 = System.nanoTime();
            memoryLock.writeLock().lock();
            try {
                if (closed) throw unavailable();
                if (!opened.resetSupported()) {
                    device.reset();
                    return new ResetResult(id(), 0, 0, (System.nanoTime() - t0) / 1000);
                }
                state(DeviceState.RESETTING, Cause.RESET);
                int revoked = pass(ExportState.LIVE, ExportState.REVOKED, EventType.EXPORT_REVOKED, Cause.RESET);
                Exception failure = null;
                try {
                    device.reset();
                } catch (Exception e) {
                    failure = e;      // restored all the same, as VFIO_DEVICE_RESET does
                }
                int restored = memoryEnabled ? pass(ExportState.REVOKED, ExportState.LIVE, EventType.EXPORT_RESTORED, Cause.RESET) : 0;
                state(memoryEnabled ? DeviceState.READY : DeviceState.MEMORY_DISABLED, Cause.RESET);
                if (failure != null) throw failure;
                return new ResetResult(id(), revoked, restored, (System.nanoTime() - t0) / 1000);
            } finally {
                memoryLock.writeLock().unlock();
                synchronized (resetGate) {
                    resetRunning = false;
                }
            }
        });
    }

    @Override
    public Future<MemoryResult> setMemory(boolean enabled) {
        return worker(() -> {
            memoryLock.writeLock().lock();
            try {
                if (closed) throw unavailable();
                if (!enabled) {
                    boolean was = memoryEnabled;
                    state(DeviceState.MEMORY_DISABLED, Cause.MEMORY_DISABLE);
                    int revoked = pass(ExportState.LIVE, ExportState.REVOKED, EventType.EXPORT_REVOKED, Cause.MEMORY_DISABLE);
                    try {
                        device.setMemoryEnabled(false);
                    } catch (Exception e) {
                        state(was ? DeviceState.READY : DeviceState.MEMORY_DISABLED, Cause.MEMORY_DISABLE);
                        if (was) pass(ExportState.REVOKED, ExportState.LIVE, EventType.EXPORT_RESTORED, Cause.MEMORY_DISABLE);
                        throw e;
                    }
                    memoryEnabled = false;
                    return new MemoryResult(id(), false, revoked, 0);
                }
                device.setMemoryEnabled(true);
                memoryEnabled = true;
                int restored = pass(ExportState.REVOKED, ExportState.LIVE, EventType.EXPORT_RESTORED, Cause.MEMORY_ENABLE);
                state(DeviceState.READY, Cause.MEMORY_ENABLE);
                return new MemoryResult(id(), true, 0, restored);
            } finally {
                memoryLock.writeLock().unlock();
            }
        });
    }

    @Override
    public Future<Void> close(Cause cause) {
        return worker(() -> {
            memoryLock.writeLock().lock();
            try {
                if (closed) return null;
                pass(ExportState.LIVE, ExportState.REVOKED, EventType.EXPORT_REVOKED, cause);
                device.close();
                closed = true;
                boolean[] last = new boolean[1];
                for (Export e : List.copyOf(exports.values())) {
                    // as in DeviceVerticle: every release takes effect before device.state closed
                    if (e.beginRelease(cause, null, last) && last[0]) finishRelease(e);
                    else releaseTakesEffect(e);
                }
                state(DeviceState.CLOSED, cause);
                return null;
            } finally {
                memoryLock.writeLock().unlock();
            }
        });
    }

    @Override
    public int exportCount() {
        return exports.size();
    }
}

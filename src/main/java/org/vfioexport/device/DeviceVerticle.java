package org.vfioexport.device;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.internal.ContextInternal;
import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;
import org.vfioexport.events.EventType;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.VfioDevice;

import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One device, one verticle: every export, release, reset and memory toggle of the device is a message to this
 * verticle's event loop, and their order is the order of the messages. This replaces the kernel's
 * {@code memory_lock} with a discipline instead of a lock:
 * <ul>
 *   <li>an export is a <em>shared</em> operation: several may run their ioctl on the worker pool at once;</li>
 *   <li>a reset or memory toggle is <em>exclusive</em>: it is admitted only when no shared operation is in
 *       flight, and nothing is admitted behind it until it is done (FIFO, so it cannot starve);</li>
 *   <li>all state (the export table, the device state, the event sequence) is touched only on this loop.</li>
 * </ul>
 * The one thing that crosses threads is an export's reference count, which mirrors the kernel's file refcount,
 * with the release that drops the owner's reference: see {@link Export}. Where a release takes effect for the
 * device (and gets its {@code export.released}) is {@link ExportPass}'s rule.
 */
final class DeviceVerticle extends VerticleBase implements ManagedDevice {
    private final OpenedDevice opened;
    private final VfioDevice device;
    private final DeviceEventLog log;

    // ---- confined to this verticle's event loop ----
    private final LinkedHashMap<String, Export> exports = new LinkedHashMap<>();
    private final ArrayDeque<Op> waiting = new ArrayDeque<>();
    private DeviceState state;
    private boolean memoryEnabled;
    private boolean closed;
    private boolean resetQueued;
    private int sharedInFlight;
    private boolean exclusiveRunning;
    private long exportCounter;
    private final AtomicInteger alive = new AtomicInteger();
    /** Test probe: runs inside a revoke/restore pass right after a successful try-get (as the sim's hook does). */
    volatile java.util.function.Consumer<Export> afterTryGet = e -> {};

    DeviceVerticle(OpenedDevice opened, DeviceEventLog log) {
        this.opened = opened;
        this.device = opened.device();
        this.memoryEnabled = opened.memoryEnabled();
        this.state = restingState();
        this.log = log;
    }

    @Override
    public Future<?> start() {
        return Future.succeededFuture();
    }

    @Override
    public String id() {
        return device.id();
    }

    // ---- the message discipline ----------------------------------------------------------------------------

    /** An operation waiting for admission. */
    private abstract class Op {
        final boolean exclusive;

        Op(boolean exclusive) {
            this.exclusive = exclusive;
        }

        /** Runs on the loop once admitted; must call {@link #done(Op)} exactly once, now or later. */
        abstract void start();
    }

    private void submit(Op op) {
        waiting.addLast(op);
        pump();
    }

    /** Admits waiting operations in order while the discipline allows. */
    private void pump() {
        while (!exclusiveRunning && !waiting.isEmpty()) {
            Op head = waiting.peekFirst();
            if (head.exclusive) {
                if (sharedInFlight > 0) return;
                waiting.pollFirst();
                exclusiveRunning = true;
            } else {
                waiting.pollFirst();
                sharedInFlight++;
            }
            head.start();
        }
    }

    private void done(Op op) {
        if (op.exclusive) exclusiveRunning = false;
        else sharedInFlight--;
        pump();
    }

    /** A promise whose listeners run on the caller's context (or the completing thread for non-Vert.x callers). */
    private static <T> Promise<T> callerPromise() {
        ContextInternal caller = ContextInternal.current();
        return caller != null ? caller.promise() : Promise.promise();
    }

    private void onLoop(Runnable r) {
        Context ctx = context;
        if (ctx == null) throw new IllegalStateException("device verticle " + id() + " is not deployed");
        ctx.runOnContext(v -> r.run());
    }

    /** Runs a blocking kernel call on the worker pool; the result comes back on this loop. */
    private <T> Future<T> blocking(Callable<T> call) {
        return vertx.executeBlocking(call, false);
    }

    private DeviceException unavailable() {
        return new DeviceException(DeviceException.Kind.UNAVAILABLE, id(), null, "device " + id() + " is closed");
    }

    // ---- queries -------------------------------------------------------------------------------------------

    @Override
    public Future<DeviceSnapshot> describe() {
        Promise<DeviceSnapshot> p = callerPromise();
        onLoop(() -> p.complete(snapshot()));
        return p.future();
    }

    private DeviceSnapshot snapshot() {
        return opened.snapshot(state, memoryEnabled, log.head(), exports.size());
    }

    // ---- export and release ------------------------------------------------------------------------------------

    @Override
    public Future<Export> export(ExportRequest request) {
        Promise<Export> p = callerPromise();
        onLoop(() -> submit(new Op(false) {
            @Override
            void start() {
                if (closed) {
                    p.fail(unavailable());
                    done(this);
                    return;
                }
                DmaBufRequest q = DmaBufRequest.get((int) request.region(), request.ranges(), request.openFlags());
                blocking(() -> device.exportDmaBuf(q)).onComplete(ar -> {
                    if (ar.failed()) p.fail(ar.cause());
                    else p.complete(created(request, ar.result()));
                    done(this);
                });
            }
        }));
        return p.future();
    }

    /** Records a new export; it starts revoked while memory decoding is off, as the kernel's does. */
    private Export created(ExportRequest request, DmaBuf buf) {
        ExportState s = memoryEnabled ? ExportState.LIVE : ExportState.REVOKED;
        String exportId = id() + "/" + (++exportCounter);
        Export e = new Export(exportId, id(), request.owner(), (int) request.region(), request.ranges(),
                log.head() + 1, buf, s, this::finishReleaseFromAnyThread);
        exports.put(exportId, e);
        alive.incrementAndGet();
        log.append(EventType.EXPORT_CREATED, exportId, Cause.CLIENT, s.wire);
        return e;
    }

    @Override
    public Future<Export> release(Export export, Cause cause) {
        Promise<Export> p = callerPromise();
        if (!export.device().equals(id())) throw new IllegalArgumentException(export.id() + " is not of " + id());
        boolean[] last = new boolean[1];
        if (!export.beginRelease(cause, p, last)) {
            p.fail(new DeviceException(DeviceException.Kind.NO_SUCH_EXPORT, id(), export.id(),
                    "export " + export.id() + " is already released"));
        } else if (last[0]) {
            onLoop(() -> finishReleaseLater(export));
        }
        // otherwise an operation iterating the exports holds a reference; its put() finishes the release
        return p.future();
    }

    /**
     * The final release, queued like any operation so that it waits for a running reset or toggle: the kernel's
     * release blocks on memory_lock the same way, which is why its {@code fput} defers it.
     */
    private void finishReleaseLater(Export e) {
        submit(new Op(false) {
            @Override
            void start() {
                finishRelease(e);
                done(this);
            }
        });
    }

    /** Closes the service's reference and completes the caller; the release takes effect here unless it already had. */
    private void finishRelease(Export e) {
        releaseTakesEffect(e);
        e.closeBuffer();
        Promise<Export> p = e.releaseDone();
        if (p != null) p.complete(e);
    }

    /**
     * Where the release of {@code e} takes effect for the device, once: it leaves the table and {@code export.released}
     * is stamped. That is the first of: a pass meeting the release begun ({@link ExportPass}), a device close, the
     * final release.
     */
    private void releaseTakesEffect(Export e) {
        if (exports.remove(e.id()) == null) return;
        alive.decrementAndGet();
        ExportPass.stampReleased(e, log);
    }

    /** Where an export's last reference hands its release: from the loop directly, from elsewhere by message. */
    private void finishReleaseFromAnyThread(Export e) {
        if (context != null && context == io.vertx.core.Vertx.currentContext()) finishReleaseLater(e);
        else onLoop(() -> finishReleaseLater(e));
    }

    // ---- revoke and restore ----------------------------------------------------------------------------------

    /** Revokes every live export that is not being released (the try-get rule), releases the others; returns how many it revoked. */
    private int revokeAll(Cause cause) {
        return ExportPass.revoke(exports.values(), cause, log, afterTryGet, this::releaseTakesEffect);
    }

    private int restoreAll(Cause cause) {
        return ExportPass.restore(exports.values(), cause, log, afterTryGet, this::releaseTakesEffect);
    }

    private void state(DeviceState s, Cause cause) {
        if (state == s) return;
        state = s;
        log.append(EventType.DEVICE_STATE, null, cause, s.wire);
    }

    private DeviceState restingState() {
        return memoryEnabled ? DeviceState.READY : DeviceState.MEMORY_DISABLED;
    }

    // ---- exclusive operations --------------------------------------------------------------------------------

    @Override
    public Future<ResetResult> reset() {
        Promise<ResetResult> p = callerPromise();
        onLoop(() -> {
            if (resetQueued) {
                // try-reset semantics: a second reset does not queue behind the first
                p.fail(new DeviceException(DeviceException.Kind.BUSY, id(), null,
                        "device " + id() + " is already resetting"));
                return;
            }
            resetQueued = true;
            submit(new Op(true) {
                @Override
                void start() {
                    runReset(this, p);
                }
            });
        });
        return p.future();
    }

    private void runReset(Op op, Promise<ResetResult> p) {
        if (closed) {
            resetQueued = false;
            p.fail(unavailable());
            done(op);
            return;
        }
        long t0 = System.nanoTime();
        if (!opened.resetSupported()) {
            // the kernel answers EINVAL before touching anything: no revoke, no events
            blocking(() -> {
                device.reset();
                return null;
            }).onComplete(ar -> {
                resetQueued = false;
                if (ar.failed()) p.fail(ar.cause());
                else p.complete(new ResetResult(id(), 0, 0, (System.nanoTime() - t0) / 1000));
                done(op);
            });
            return;
        }
        state(DeviceState.RESETTING, Cause.RESET);
        int revoked = revokeAll(Cause.RESET);
        blocking(() -> {
            device.reset();
            return null;
        }).onComplete(ar -> {
            // restored whether or not the reset itself succeeded, as VFIO_DEVICE_RESET does
            int restored = memoryEnabled ? restoreAll(Cause.RESET) : 0;
            state(restingState(), Cause.RESET);
            resetQueued = false;
            if (ar.failed()) p.fail(ar.cause());
            else p.complete(new ResetResult(id(), revoked, restored, (System.nanoTime() - t0) / 1000));
            done(op);
        });
    }

    @Override
    public Future<MemoryResult> setMemory(boolean enabled) {
        Promise<MemoryResult> p = callerPromise();
        onLoop(() -> submit(new Op(true) {
            @Override
            void start() {
                if (closed) {
                    p.fail(unavailable());
                    done(this);
                } else if (enabled) {
                    enableMemory(this, p);
                } else {
                    disableMemory(this, p);
                }
            }
        }));
        return p.future();
    }

    private void disableMemory(Op op, Promise<MemoryResult> p) {
        boolean wasEnabled = memoryEnabled;
        state(DeviceState.MEMORY_DISABLED, Cause.MEMORY_DISABLE);
        int revoked = revokeAll(Cause.MEMORY_DISABLE);
        blocking(() -> {
            device.setMemoryEnabled(false);
            return null;
        }).onComplete(ar -> {
            if (ar.failed()) {
                // the config write did not happen: decoding is as it was, so undo the revocations
                state(restingState(), Cause.MEMORY_DISABLE);
                if (wasEnabled) restoreAll(Cause.MEMORY_DISABLE);
                p.fail(ar.cause());
            } else {
                memoryEnabled = false;
                p.complete(new MemoryResult(id(), false, revoked, 0));
            }
            done(op);
        });
    }

    private void enableMemory(Op op, Promise<MemoryResult> p) {
        blocking(() -> {
            device.setMemoryEnabled(true);
            return null;
        }).onComplete(ar -> {
            if (ar.failed()) {
                p.fail(ar.cause());
            } else {
                memoryEnabled = true;
                int restored = restoreAll(Cause.MEMORY_ENABLE);
                state(DeviceState.READY, Cause.MEMORY_ENABLE);
                p.complete(new MemoryResult(id(), true, 0, restored));
            }
            done(op);
        });
    }

    @Override
    public Future<Void> close(Cause cause) {
        Promise<Void> p = callerPromise();
        onLoop(() -> submit(new Op(true) {
            @Override
            void start() {
                if (closed) {
                    p.complete();
                    done(this);
                    return;
                }
                revokeAll(cause);
                blocking(() -> {
                    device.close();
                    return null;
                }).onComplete(ar -> {
                    closed = true;
                    boolean[] last = new boolean[1];
                    for (Export e : List.copyOf(exports.values())) {
                        // every export's release takes effect now, so that device.state closed is the device's last
                        // event; one whose last reference is held elsewhere (or whose release began elsewhere)
                        // closes its buffer when that reference drops
                        if (e.beginRelease(cause, null, last) && last[0]) finishRelease(e);
                        else releaseTakesEffect(e);
                    }
                    state(DeviceState.CLOSED, cause);
                    if (ar.failed()) p.fail(ar.cause());
                    else p.complete();
                    done(this);
                });
            }
        }));
        return p.future();
    }

    /** Exports alive now, from any thread (a counter the loop keeps beside its table). */
    @Override
    public int exportCount() {
        return alive.get();
    }
}

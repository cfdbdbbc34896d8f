package org.vfioexport.device;

import io.vertx.core.Promise;
import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventType;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.VfioDevice;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * One device's state and every rule about it, with no thread in it: the export table, the device state, the
 * memory-enable bit, the revoke and restore passes (with the try-get rule and the point where a release takes
 * effect, {@link ExportPass}), event stamping, the rollback of a failed memory-off, the device close and its
 * final sweep, and the try-reset gate.
 *
 * <p>Each operation is an {@link Op}: shared (an export, a final release) or exclusive (a reset, a memory toggle,
 * a close). Its steps are {@link Step}s: the core runs a step, and either finishes or names one kernel call (and
 * whether that call can sleep); the scheduler makes the call where it sees fit and hands the outcome to the next
 * step. A scheduler must guarantee three things, and the core needs nothing else:
 * <ol>
 *   <li>steps never overlap: one step of one operation at a time, each seeing the previous one's writes;</li>
 *   <li>admission: an exclusive operation runs alone from its first step to its last (its kernel calls included);
 *       shared operations may overlap each other, but never an exclusive one;</li>
 *   <li>{@link #describe()}, {@link #claimReset()} and the watch steps ({@link #watch}, {@link #unwatch},
 *       {@link #quiesced}, {@link #watcherGone}) run as steps of their own, at any time between two steps,
 *       without admission (they never wait for an operation);</li>
 *   <li>a {@link Step.Await} (the revocation handshake) parks the operation, admission kept, until
 *       {@link #handshakeSettled()} after a watch step, or its deadline, then resumes it.</li>
 * </ol>
 * {@link MessageOrderDevice} provides them with one event loop and a FIFO of operations (message order);
 * {@link RwLockDevice} with a read-write lock held across each operation and a monitor around each step (the
 * kernel's {@code memory_lock}). The only state that crosses threads outside a step is an export's reference
 * count ({@link Export#tryGet()}, {@link #beginRelease}) and the export count ({@link #exportCount()}).
 */
final class DeviceCore {
    /** One operation, as its scheduler admits it. */
    record Op<T>(String name, boolean exclusive, Supplier<Step<T>> start) {}

    private final OpenedDevice opened;
    private final VfioDevice device;
    private final DeviceEventLog log;
    /** The scheduler's way to queue an export's final release behind what holds the device; any thread. */
    private final Consumer<Export> finalReleases;

    // ---- touched only by steps ----
    private final LinkedHashMap<String, Export> exports = new LinkedHashMap<>();
    private DeviceState state;
    private boolean memoryEnabled;
    private boolean closed;
    private boolean resetClaimed;
    private long exportCounter;
    /** Who asked to be consulted before which export is revoked. */
    private final Watches watches = new Watches();
    /** The revocation handshake an exclusive operation is waiting on, or null. */
    private Handshake handshake;
    /** The table's size, published for readers on any thread. */
    private volatile int exportCount;
    /** Test probe: runs inside a revoke/restore pass right after a successful try-get (as the sim's hook does). */
    volatile Consumer<Export> afterTryGet = e -> {};

    DeviceCore(OpenedDevice opened, DeviceEventLog log, Consumer<Export> finalReleases) {
        this.opened = opened;
        this.device = opened.device();
        this.log = log;
        this.finalReleases = finalReleases;
        this.memoryEnabled = opened.memoryEnabled();
        this.state = restingState();
    }

    String id() {
        return device.id();
    }

    /** Exports in the table now; any thread. */
    int exportCount() {
        return exportCount;
    }

    private DeviceException unavailable() {
        return new DeviceException(DeviceException.Kind.UNAVAILABLE, id(), null, "device " + id() + " is closed");
    }

    // ---- steps without admission --------------------------------------------------------------------------

    /** A step: the device as it is between two steps (during a reset, {@code resetting}). */
    DeviceSnapshot describe() {
        return opened.snapshot(state, memoryEnabled, log.head(), exports.size());
    }

    /**
     * A step, at the reset's arrival: try-reset semantics. A reset is refused as busy while another is queued or
     * running (the kernel try-locks this path too), rather than queued behind it. The claim ends with the reset.
     */
    boolean claimReset() {
        if (resetClaimed) return false;
        resetClaimed = true;
        return true;
    }

    DeviceException busy() {
        return new DeviceException(DeviceException.Kind.BUSY, id(), null, "device " + id() + " is already resetting");
    }

    // ---- watch steps: without admission ---------------------------------------------------------------------

    /**
     * A step: {@code w} is consulted before {@code e} is revoked by a reset or memory-off, from the next one on
     * (a handshake already running does not wait for it). False if it already watched.
     */
    boolean watch(Export e, Watcher w) throws DeviceException {
        if (closed) throw unavailable();
        if (!e.device().equals(id()) || !exports.containsKey(e.id()) || e.releaseBegun()) {
            throw new DeviceException(DeviceException.Kind.NO_SUCH_EXPORT, id(), e.id(), "no such export: " + e.id());
        }
        return watches.add(e.id(), w);
    }

    /**
     * A step: the watch ends. An answer the running handshake still waited for from {@code w} counts as given:
     * who no longer watches has nothing to quiesce. False if it did not watch.
     */
    boolean unwatch(String exportId, Watcher w) {
        if (handshake != null) handshake.answer(exportId, w);
        return watches.remove(exportId, w);
    }

    /**
     * A step: {@code w}'s {@code export.quiesced} for {@code exportId}. Refused when {@code w} does not watch the
     * export, or when no handshake waits for this answer (none running, already answered, deadline passed).
     * Whether the operation may go on now is {@link #handshakeSettled()}.
     */
    void quiesced(String exportId, Watcher w) throws DeviceException {
        if (!watches.watches(exportId, w)) {
            throw new DeviceException(DeviceException.Kind.NOT_WATCHING, id(), exportId, "this connection does not watch export "
                    + exportId + " (export.watch with ack true first)");
        }
        if (handshake == null || !handshake.answer(exportId, w)) {
            throw new DeviceException(DeviceException.Kind.NO_HANDSHAKE, id(), exportId, "no revocation handshake awaits an "
                    + "answer about export " + exportId + ": none is running, it has this answer already, or its deadline passed");
        }
    }

    /** A step: {@code w}'s connection closed; its watches end and every answer awaited from it counts as given. */
    void watcherGone(Watcher w) {
        for (String exportId : watches.removeAll(w)) if (handshake != null) handshake.answer(exportId, w);
    }

    /**
     * A step: the daemon is stopping; a running handshake waits no longer (whoever has not answered timed out),
     * so that the device close queued behind its operation is not held up to the deadline.
     */
    void cutHandshakeShort() {
        if (handshake != null) handshake.finish();
    }

    /** True when no handshake waits for an answer: a parked operation may resume. */
    boolean handshakeSettled() {
        return handshake == null || handshake.settled();
    }

    // ---- the beginning of a release: any thread ------------------------------------------------------------

    /**
     * Begins a release on the calling thread, at once: the owner's reference drops (so a pass already under way
     * skips the export, and the release takes effect there), and {@code done} completes with the final release.
     * Not a step: it touches only the export's atomic state. Whoever drops the last reference queues the final
     * release through the scheduler ({@link #finalRelease(Export)}).
     */
    void beginRelease(Export export, Cause cause, Promise<Export> done) {
        if (!export.device().equals(id())) throw new IllegalArgumentException(export.id() + " is not of " + id());
        boolean[] last = new boolean[1];
        if (!export.beginRelease(cause, done, last)) {
            done.fail(new DeviceException(DeviceException.Kind.NO_SUCH_EXPORT, id(), export.id(),
                    "export " + export.id() + " is already released"));
        } else if (last[0]) {
            finalReleases.accept(export);
        }
        // otherwise a pass holds a reference; its put() queues the final release
    }

    // ---- shared operations ---------------------------------------------------------------------------------

    /** An export: the kernel's GET, then the new export in the table and {@code export.created}. */
    Op<Export> export(ExportRequest request) {
        return new Op<>("export", false, () -> {
            if (closed) return Step.failed(unavailable());
            DmaBufRequest q = DmaBufRequest.get((int) request.region(), request.ranges(), request.openFlags());
            return Step.call(() -> device.exportDmaBuf(q), device.maySleep(VfioDevice.Call.EXPORT),
                    (buf, err) -> err != null ? Step.failed(err) : Step.done(created(request, buf)));
        });
    }

    /** Records a new export; it starts revoked while memory decoding is off, as the kernel's does. */
    private Export created(ExportRequest request, DmaBuf buf) {
        ExportState s = memoryEnabled ? ExportState.LIVE : ExportState.REVOKED;
        String exportId = id() + "/" + (++exportCounter);
        Export e = new Export(exportId, id(), request.owner(), (int) request.region(), request.ranges(),
                log.head() + 1, buf, s, finalReleases);
        exports.put(exportId, e);
        exportCount = exports.size();
        log.append(EventType.EXPORT_CREATED, exportId, e.owner(), Cause.CLIENT, s.wire, null);
        return e;
    }

    /**
     * The final release, queued like any operation so that it waits for a running reset or toggle: the kernel's
     * release blocks on memory_lock the same way, which is why its {@code fput} defers it. It closes the service's
     * reference and completes the caller; the release takes effect here unless a pass or a close already made it.
     */
    Op<Void> finalRelease(Export e) {
        return new Op<>("final release", false, () -> {
            releaseTakesEffect(e);
            e.closeBuffer();
            Promise<Export> p = e.releaseDone();
            if (p != null) p.complete(e);
            return Step.done(null);
        });
    }

    /**
     * Where the release of {@code e} takes effect for the device, once: it leaves the table and
     * {@code export.released} is stamped. That is the first of: a pass meeting the release begun
     * ({@link ExportPass}), a device close's sweep, the final release.
     */
    private void releaseTakesEffect(Export e) {
        if (exports.remove(e.id()) == null) return;
        watches.drop(e.id());
        exportCount = exports.size();
        ExportPass.stampReleased(e, log);
    }

    // ---- exclusive operations ------------------------------------------------------------------------------

    /**
     * {@code VFIO_DEVICE_RESET}, after a successful {@link #claimReset()}: the revocation handshake (at most
     * {@code deadlineMs}), then revoke, reset, restore, with events.
     */
    Op<ResetResult> reset(long deadlineMs) {
        return new Op<>("reset", true, () -> {
            if (closed) {
                resetClaimed = false;
                return Step.failed(unavailable());
            }
            long t0 = System.nanoTime();
            boolean sleeps = device.maySleep(VfioDevice.Call.RESET);
            if (!opened.resetSupported()) {
                // the kernel answers EINVAL before touching anything: no revoke, no events
                return Step.call(() -> {
                    device.reset();
                    return null;
                }, sleeps, (v, err) -> {
                    resetClaimed = false;
                    return err != null ? Step.failed(err)
                            : Step.done(new ResetResult(id(), 0, 0, micros(t0), HandshakeOutcome.NONE));
                });
            }
            return consultWatchers(Cause.RESET, deadlineMs, hs -> {
                state(DeviceState.RESETTING, Cause.RESET);
                int revoked = revokeAll(Cause.RESET, hs);
                HandshakeOutcome outcome = outcome(hs);
                // on 7.1 the kernel's revoke inside the reset waits, without a deadline, for every importer to unmap
                return Step.call(() -> {
                    device.reset();
                    return null;
                }, sleeps, (v, err) -> {
                    // restored whether or not the reset itself succeeded, as VFIO_DEVICE_RESET does
                    int restored = memoryEnabled ? restoreAll(Cause.RESET) : 0;
                    state(restingState(), Cause.RESET);
                    resetClaimed = false;
                    return err != null ? Step.failed(err)
                            : Step.done(new ResetResult(id(), revoked, restored, micros(t0), outcome));
                });
            });
        });
    }

    /**
     * The revocation handshake, the first step of a reset or memory-off: every live export with watchers (and no
     * release begun) gets {@code export.revoking} in the stream, and each of its watchers the notice; the operation
     * then parks ({@link Step.Await}) until every answer is in or {@code deadlineMs} passed, and goes on with
     * {@code then}. With no watched live export it goes on at once, with a null handshake.
     */
    private <T> Step<T> consultWatchers(Cause cause, long deadlineMs, Function<Handshake, Step<T>> then) {
        Handshake h = null;
        if (!watches.isEmpty()) {
            for (Export e : exports.values()) {
                if (e.state() != ExportState.LIVE || e.releaseBegun()) continue;
                List<Watcher> ws = watches.of(e.id());
                if (ws.isEmpty()) continue;
                if (h == null) h = new Handshake(deadlineMs);
                Event ev = log.append(EventType.EXPORT_REVOKING, e.id(), e.owner(), cause, null, Event.Handshake.revoking(deadlineMs));
                for (Watcher w : ws) {
                    h.await(e.id(), w);
                    w.revoking(id(), e.id(), ev.seq(), deadlineMs);
                }
            }
        }
        if (h == null) return then.apply(null);
        Handshake hs = h;
        handshake = hs;
        return new Step.Await<>(deadlineMs, () -> {
            hs.finish();         // whoever has not answered by now timed out
            handshake = null;
            return then.apply(hs);
        });
    }

    private static HandshakeOutcome outcome(Handshake hs) {
        return hs == null ? HandshakeOutcome.NONE : new HandshakeOutcome(hs.acked(), hs.timedOut(), hs.micros());
    }

    private static long micros(long t0) {
        return (System.nanoTime() - t0) / 1000;
    }

    /**
     * Turns PCI memory decoding on (then restores) or off (the revocation handshake, at most {@code deadlineMs},
     * then revokes; restores again if the write fails).
     */
    Op<MemoryResult> setMemory(boolean enabled, long deadlineMs) {
        return new Op<>(enabled ? "memory on" : "memory off", true, () -> {
            if (closed) return Step.failed(unavailable());
            return enabled ? enableMemory() : consultWatchers(Cause.MEMORY_DISABLE, deadlineMs, this::disableMemory);
        });
    }

    private Step<MemoryResult> disableMemory(Handshake hs) {
        boolean wasEnabled = memoryEnabled;
        state(DeviceState.MEMORY_DISABLED, Cause.MEMORY_DISABLE);
        int revoked = revokeAll(Cause.MEMORY_DISABLE, hs);
        HandshakeOutcome outcome = outcome(hs);
        return Step.call(() -> {
            device.setMemoryEnabled(false);
            return null;
        }, device.maySleep(VfioDevice.Call.MEMORY_OFF), (v, err) -> {
            if (err != null) {
                // the config write did not happen: decoding is as it was, so undo the revocations
                state(restingState(), Cause.MEMORY_DISABLE);
                if (wasEnabled) restoreAll(Cause.MEMORY_DISABLE);
                return Step.failed(err);
            }
            memoryEnabled = false;
            return Step.done(new MemoryResult(id(), false, revoked, 0, outcome));
        });
    }

    private Step<MemoryResult> enableMemory() {
        return Step.call(() -> {
            device.setMemoryEnabled(true);
            return null;
        }, device.maySleep(VfioDevice.Call.MEMORY_ON), (v, err) -> {
            if (err != null) return Step.failed(err);
            memoryEnabled = true;
            int restored = restoreAll(Cause.MEMORY_ENABLE);
            state(DeviceState.READY, Cause.MEMORY_ENABLE);
            return Step.done(new MemoryResult(id(), true, 0, restored, HandshakeOutcome.NONE));
        });
    }

    /**
     * Closes the device: revokes, closes the kernel device (which detaches every buffer for good), then makes every
     * export's release take effect, so that {@code device.state closed} is the device's last event.
     */
    Op<Void> close(Cause cause) {
        return new Op<>("close", true, () -> {
            if (closed) return Step.done(null);
            revokeAll(cause, null);      // no handshake: a close (shutdown) does not wait for watchers
            return Step.call(() -> {
                device.close();
                return null;
            }, device.maySleep(VfioDevice.Call.CLOSE), (v, err) -> {
                closed = true;
                boolean[] last = new boolean[1];
                for (Export e : List.copyOf(exports.values())) {
                    // an export whose last reference is held elsewhere (or whose release began elsewhere) closes its
                    // buffer when that reference drops; its release takes effect now all the same
                    if (e.beginRelease(cause, null, last) && last[0]) runFinalReleaseNow(e);
                    else releaseTakesEffect(e);
                }
                state(DeviceState.CLOSED, cause);
                return err != null ? Step.failed(err) : Step.done(null);
            });
        });
    }

    /** The close's own final release of an export nobody else holds: inside the close's step, not queued. */
    private void runFinalReleaseNow(Export e) {
        releaseTakesEffect(e);
        e.closeBuffer();
    }

    // ---- passes and state ----------------------------------------------------------------------------------

    /** Revokes every live export that is not being released (the try-get rule), releases the others. */
    private int revokeAll(Cause cause, Handshake hs) {
        return ExportPass.revoke(exports.values(), cause, log, afterTryGet, this::releaseTakesEffect, e -> {
            int[] o = hs == null ? null : hs.outcome(e.id());
            return o == null ? null : Event.Handshake.outcome(o[0], o[1]);
        });
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
}

package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.internal.ContextInternal;
import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;

import java.util.ArrayDeque;
import java.util.function.Supplier;

/**
 * The service's scheduler of a {@link DeviceCore}: message order instead of the kernel's {@code memory_lock}. The
 * device lives on one Vert.x event-loop context; every operation is a message to it, and an admission queue on that
 * loop lets operations in, in message order:
 * <ul>
 *   <li>a shared operation (an export, a final release) when no exclusive one is running or waiting ahead of it;</li>
 *   <li>an exclusive one (a reset, a memory toggle, a close) when no shared one is in flight; nothing is admitted
 *       behind it until it is done (FIFO, so it cannot starve).</li>
 * </ul>
 * Every step of the core runs on the loop, so steps never overlap. A kernel call that cannot sleep (an export)
 * runs right there on the loop; one that can (a reset waiting for the hardware) runs on the worker pool, and its
 * outcome comes back to the loop as a message, the operation still holding its place in the queue meanwhile.
 *
 * <p>The revocation handshake ({@link Step.Await}) parks its operation with a timer on the loop, admission kept:
 * no thread waits. Answers ({@code export.quiesced}, an ended watch, a closed connection) are steps on the loop
 * like {@link #describe()}; the one that settles the handshake resumes the operation at once, else the timer does.
 *
 * <p>A call made on the device loop's own thread (a connection that shares the loop) runs at once, without a
 * message: no hand-off at all. From any other thread it is one message to the loop; the caller's promise brings
 * the result back, one message the other way.
 */
final class MessageOrderDevice implements ManagedDevice {
    private final DeviceCore core;
    private final ContextInternal context;

    // ---- confined to the device's loop ----
    private final ArrayDeque<Admission<?>> waiting = new ArrayDeque<>();
    private int sharedInFlight;
    private boolean exclusiveRunning;
    /** True while the loop is inside the queue's work: a call arriving from within (a listener) only enqueues. */
    private boolean pumping;
    /** The operation parked on the revocation handshake, or null. */
    private Parked<?> parked;
    /** {@code waiting.size()}, published for readers on other threads. */
    private volatile int waitingCount;

    MessageOrderDevice(OpenedDevice opened, DeviceEventLog log, ContextInternal context) {
        this.context = context;
        this.core = new DeviceCore(opened, log, this::queueFinalRelease);
    }

    @Override
    public String id() {
        return core.id();
    }

    DeviceCore core() {
        return core;
    }

    /** The device's event loop context. */
    ContextInternal context() {
        return context;
    }

    /** An operation waiting for admission, with the caller's promise. */
    private record Admission<T>(DeviceCore.Op<T> op, Promise<T> promise) {}

    /** Runs {@code r} on the device's loop: at once when this thread is the loop, else as a message to it. */
    private void onLoop(Runnable r) {
        context.emit(v -> r.run());
    }

    /** A promise whose listeners run on the caller's context (or the completing thread for non-Vert.x callers). */
    private static <T> Promise<T> callerPromise() {
        ContextInternal caller = ContextInternal.current();
        return caller != null ? caller.promise() : Promise.promise();
    }

    private <T> Future<T> submit(DeviceCore.Op<T> op) {
        Promise<T> p = callerPromise();
        onLoop(() -> admit(new Admission<>(op, p)));
        return p.future();
    }

    // ---- the admission queue (on the loop) ----------------------------------------------------------------

    private void admit(Admission<?> a) {
        waiting.addLast(a);
        waitingCount = waiting.size();
        pump();
    }

    /** Admits waiting operations in order while the discipline allows, and runs them as far as they go. */
    private void pump() {
        if (pumping) return;
        pumping = true;
        try {
            while (!exclusiveRunning && !waiting.isEmpty()) {
                Admission<?> head = waiting.peekFirst();
                if (head.op().exclusive()) {
                    if (sharedInFlight > 0) return;
                    exclusiveRunning = true;
                } else {
                    sharedInFlight++;
                }
                waiting.pollFirst();
                waitingCount = waiting.size();
                start(head);
            }
        } finally {
            pumping = false;
        }
    }

    private <T> void start(Admission<T> a) {
        drive(a, a.op().start().get());
    }

    /** Runs the operation's steps on the loop until it finishes or makes a call that can sleep. */
    private <T> void drive(Admission<T> a, Step<T> step) {
        while (true) {
            switch (step) {
                case Step.Done<T> d -> {
                    leave(a);
                    a.promise().complete(d.value());
                    return;
                }
                case Step.Failed<T> f -> {
                    leave(a);
                    a.promise().fail(f.cause());
                    return;
                }
                case Step.Call<T, ?> c -> {
                    if (c.maySleep()) {
                        onWorker(a, c);
                        return;
                    }
                    step = c.invoke().get();      // cannot sleep: on the loop, no hand-off
                }
                case Step.Await<T> w -> {
                    park(a, w);
                    return;
                }
            }
        }
    }

    /** A call that can sleep: on the worker pool; the operation resumes on the loop with its outcome. */
    private <T, V> void onWorker(Admission<T> a, Step.Call<T, V> c) {
        context.<Supplier<Step<T>>>executeBlocking(c::invoke, false).onComplete(ar -> {
            Supplier<Step<T>> rest = ar.succeeded() ? ar.result() : () -> c.then().apply(null, ar.cause());
            resume(a, rest);
        });
    }

    /** Goes on with a running operation's next step on the loop, then admits what may follow it. */
    private <T> void resume(Admission<T> a, Supplier<Step<T>> rest) {
        boolean outer = !pumping;
        pumping = true;
        try {
            drive(a, rest.get());
        } finally {
            if (outer) pumping = false;
        }
        pump();
    }

    /** An operation waiting for the revocation handshake, and the timer of its deadline. */
    private static final class Parked<T> {
        final Admission<T> admission;
        final Step.Await<T> await;
        long timer;

        Parked(Admission<T> admission, Step.Await<T> await) {
            this.admission = admission;
            this.await = await;
        }
    }

    /** Parks the operation (it keeps its admission: nothing behind it is let in) until its answers or deadline. */
    private <T> void park(Admission<T> a, Step.Await<T> w) {
        Parked<T> p = new Parked<>(a, w);
        parked = p;
        p.timer = context.owner().setTimer(Math.max(1, w.millis()), id -> onLoop(() -> unpark(p)));
    }

    /** Resumes {@code p} once: by the answer that settled the handshake, or by its deadline. */
    private <T> void unpark(Parked<T> p) {
        if (parked != p) return;
        parked = null;
        context.owner().cancelTimer(p.timer);
        resume(p.admission, p.await.then());
    }

    /** After an answer: the parked operation goes on at once if it waits for nothing more. */
    private void unparkIfSettled() {
        if (parked != null && core.handshakeSettled()) unpark(parked);
    }

    private void leave(Admission<?> a) {
        if (a.op().exclusive()) exclusiveRunning = false;
        else sharedInFlight--;
    }

    // ---- the handle ------------------------------------------------------------------------------------------

    /** Answers between two steps, never waiting for an operation (during a reset it says {@code resetting}). */
    @Override
    public Future<DeviceSnapshot> describe() {
        Promise<DeviceSnapshot> p = callerPromise();
        onLoop(() -> p.complete(core.describe()));
        return p.future();
    }

    @Override
    public Future<Export> export(ExportRequest request) {
        return submit(core.export(request));
    }

    @Override
    public Future<Export> release(Export export, Cause cause) {
        Promise<Export> p = callerPromise();
        core.beginRelease(export, cause, p);
        return p.future();
    }

    /** Where an export's last reference hands its final release: into the queue, behind what holds the device. */
    private void queueFinalRelease(Export e) {
        onLoop(() -> admit(new Admission<>(core.finalRelease(e), Promise.promise())));
    }

    @Override
    public Future<ResetResult> reset(long quiesceMillis) {
        Promise<ResetResult> p = callerPromise();
        onLoop(() -> {
            if (core.claimReset()) admit(new Admission<>(core.reset(quiesceMillis), p));
            else p.fail(core.busy());
        });
        return p.future();
    }

    @Override
    public Future<MemoryResult> setMemory(boolean enabled, long quiesceMillis) {
        return submit(core.setMemory(enabled, quiesceMillis));
    }

    // ---- watches: steps on the loop without admission -------------------------------------------------------

    @Override
    public Future<Boolean> watch(Export export, Watcher w) {
        Promise<Boolean> p = callerPromise();
        onLoop(() -> {
            try {
                p.complete(core.watch(export, w));
            } catch (DeviceException e) {
                p.fail(e);
            }
        });
        return p.future();
    }

    @Override
    public Future<Boolean> unwatch(Export export, Watcher w) {
        Promise<Boolean> p = callerPromise();
        onLoop(() -> {
            p.complete(core.unwatch(export.id(), w));
            unparkIfSettled();
        });
        return p.future();
    }

    @Override
    public Future<Void> quiesced(String exportId, Watcher w) {
        Promise<Void> p = callerPromise();
        onLoop(() -> {
            try {
                core.quiesced(exportId, w);
            } catch (DeviceException e) {
                p.fail(e);
                return;
            }
            p.complete();
            unparkIfSettled();
        });
        return p.future();
    }

    @Override
    public void cutHandshakeShort() {
        onLoop(() -> {
            core.cutHandshakeShort();
            unparkIfSettled();
        });
    }

    @Override
    public void watcherGone(Watcher w) {
        onLoop(() -> {
            core.watcherGone(w);
            unparkIfSettled();
        });
    }

    @Override
    public Future<Void> close(Cause cause) {
        return submit(core.close(cause));
    }

    /** Exports alive now, from any thread. */
    @Override
    public int exportCount() {
        return core.exportCount();
    }

    @Override
    public int waitingForAdmission() {
        return waitingCount;
    }
}

package org.vfioexport.kernel.sim;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The simulated kernel's task_work/workqueue: the final release of a dma-buf runs here, never in the thread that
 * dropped the last reference. A revoke holds memory_lock when its {@code fput} may drop the last reference, and
 * release needs memory_lock, so running it inline would deadlock (König, Dec 2024).
 *
 * <p>Tests can hold the worker ({@link #hold()}) to freeze a release between "refcount reached zero" and "release
 * reached memory_lock" (scenario T2), and wait for it to go idle ({@link #drain(long)}).
 */
public final class DeferredWork implements AutoCloseable {
    private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "sim-kworker");
        t.setDaemon(true);
        return t;
    });
    private final Semaphore gate = new Semaphore(1);
    private final AtomicBoolean held = new AtomicBoolean();

    void submit(Runnable work) {
        worker.execute(() -> {
            gate.acquireUninterruptibly();
            try {
                work.run();
            } finally {
                gate.release();
            }
        });
    }

    /** Stops deferred work from running until {@link #release()}. */
    public void hold() {
        if (held.compareAndSet(false, true)) gate.acquireUninterruptibly();
    }

    public void release() {
        if (held.compareAndSet(true, false)) gate.release();
    }

    /** Waits until every work item queued before this call has run; false on timeout. */
    public boolean drain(long timeoutMillis) throws InterruptedException {
        Semaphore done = new Semaphore(0);
        worker.execute(done::release);
        return done.tryAcquire(timeoutMillis, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        release();
        worker.shutdown();
    }
}

package org.vfioexport.events;

import io.vertx.core.Context;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Items handed over from any thread (a device's loop, without blocking it) and drained in order, in whole batches,
 * on one context: at most one drain is scheduled at a time, and it takes everything queued so far. Items offered
 * from one thread are drained in the order offered. Beyond {@code max} waiting items an offer is dropped and
 * counted.
 */
public final class ContextDrainQueue<T> {
    private final Context context;
    private final int max;
    private final Consumer<List<T>> drain;

    // guarded by this
    private List<T> queue = new ArrayList<>();
    private boolean scheduled;
    private long dropped;

    public ContextDrainQueue(Context context, int max, Consumer<List<T>> drain) {
        this.context = context;
        this.max = max;
        this.drain = drain;
    }

    /** Queues {@code item}; false (and counted in {@link #dropped()}) when {@code max} items wait already. */
    public boolean offer(T item) {
        synchronized (this) {
            if (queue.size() >= max) {
                dropped++;
                return false;
            }
            queue.add(item);
            if (scheduled) return true;
            scheduled = true;
        }
        context.runOnContext(v -> drainNow());
        return true;
    }

    private void drainNow() {
        List<T> batch;
        synchronized (this) {
            batch = queue;
            queue = new ArrayList<>();
            scheduled = false;
        }
        drain.accept(batch);
    }

    public synchronized long dropped() {
        return dropped;
    }
}

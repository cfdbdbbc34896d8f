package org.vfioexport.events;

import io.vertx.core.Context;

import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * One subscriber: a bounded queue between the devices (producers, on their loops) and the subscriber's context
 * (the consumer). A subscriber that stops reading never slows a device: once its queue is full, further events of
 * a device are dropped and later reported as one {@code events.lost} naming the exact gap, placed before that
 * device's next delivered event, so per-device order holds for every subscriber.
 *
 * <p>A scoped subscription ({@link Scope}) is offered only the events in its scope, so its seq numbers skip the
 * others; a gap it reports spans the first to the last in-scope seq it dropped.
 */
public final class Subscription {
    private final String id;
    private final Set<String> devices;
    private final Scope scope;
    private final int capacity;
    private final Context context;
    private final EventSink sink;
    private final Runnable onClose;

    // guarded by this: the queue, the pending gaps, the scheduling flags
    private final ArrayDeque<Event> queue = new ArrayDeque<>();
    private final Map<String, long[]> gaps = new LinkedHashMap<>();
    private boolean drainScheduled;
    /** Paused until {@link #start()}: nothing is delivered before the hub has accepted the subscription whole. */
    private boolean paused = true;
    private boolean closed;
    private long delivered, lost;

    Subscription(String id, Set<String> devices, Scope scope, int capacity, Context context, EventSink sink,
                 Runnable onClose) {
        this.id = id;
        this.devices = devices;
        this.scope = scope;
        this.capacity = capacity;
        this.context = context;
        this.sink = sink;
        this.onClose = onClose;
    }

    public String id() {
        return id;
    }

    /** The devices this subscription follows; null for all. */
    public Set<String> devices() {
        return devices;
    }

    /** Which events of its devices it receives; the devices offer it nothing else. */
    public Scope scope() {
        return scope;
    }

    boolean wants(String device) {
        return devices == null || devices.contains(device);
    }

    /** Called by a device (any thread). Never blocks, never waits for the subscriber. */
    void offer(Event e) {
        synchronized (this) {
            if (closed) return;
            long[] gap = gaps.get(e.device());
            if (queue.size() >= capacity) {
                if (gap == null) gaps.put(e.device(), new long[] {e.seq(), e.seq()});
                else gap[1] = e.seq();
                lost++;
                return;
            }
            if (gap != null) {
                gaps.remove(e.device());
                queue.add(Event.lost(e.device(), gap[0], gap[1]));
            }
            queue.add(e);
            // as schedule() decides, under the monitor already held: one lock per offered event, not two
            if (drainScheduled || paused) return;
            drainScheduled = true;
        }
        context.runOnContext(v -> drain());
    }

    /** Replayed events go in regardless of capacity: a reconnecting subscriber asked for them explicitly. */
    void offerReplay(Event e) {
        synchronized (this) {
            if (!closed) queue.add(e);
        }
    }

    void schedule() {
        synchronized (this) {
            if (drainScheduled || paused || closed) return;
            drainScheduled = true;
        }
        context.runOnContext(v -> drain());
    }

    /** Begins delivery, once the hub has registered the subscription with every device. */
    void start() {
        synchronized (this) {
            paused = false;
        }
        schedule();
    }

    /** Resumes delivery after the sink said it was full. Call on the subscriber's context. */
    public void resume() {
        synchronized (this) {
            paused = false;
        }
        schedule();
    }

    private static final int BATCH = 512;

    private void drain() {
        try {
            drainBatch();
        } finally {
            sink.flush();
        }
    }

    private void drainBatch() {
        for (int i = 0; i < BATCH; i++) {
            Event e;
            synchronized (this) {
                if (closed) return;
                e = queue.poll();
                if (e == null) {
                    flushGapsLocked();
                    e = queue.poll();
                }
                if (e == null) {
                    drainScheduled = false;
                    return;
                }
            }
            boolean more = sink.deliver(e);
            synchronized (this) {
                delivered++;
                if (!more) {
                    paused = true;
                    drainScheduled = false;
                    return;
                }
            }
        }
        synchronized (this) {
            drainScheduled = false;
        }
        schedule(); // yield the loop to other work, then go on
    }

    /** Gaps whose device sent nothing since: report them once there is room, so a quiet device's loss is not hidden. */
    private void flushGapsLocked() {
        for (Map.Entry<String, long[]> g : gaps.entrySet()) {
            queue.add(Event.lost(g.getKey(), g.getValue()[0], g.getValue()[1]));
        }
        gaps.clear();
    }

    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            queue.clear();
        }
        onClose.run();
    }

    public synchronized boolean isClosed() {
        return closed;
    }

    public synchronized long deliveredCount() {
        return delivered;
    }

    public synchronized long lostCount() {
        return lost;
    }

    public synchronized int queued() {
        return queue.size();
    }
}

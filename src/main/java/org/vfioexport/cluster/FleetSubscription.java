package org.vfioexport.cluster;

import io.vertx.core.buffer.Buffer;
import org.vfioexport.api.Session;

import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code events.subscribe {fleet: true}}: a bounded queue between the node's fleet receiver (the producer) and
 * the connection's loop, with the same rule as a local subscription: once the queue is full a device's further
 * events are dropped and reported as one {@code events.lost} naming the node, the device and the exact gap, placed
 * before that device's next delivered event. Membership events are never dropped (they are few).
 */
final class FleetSubscription {
    private static final int MAX_GATHER = 64 * 1024;

    private final String id;
    private final int capacity;
    private final Session session;
    private final Runnable onClose;

    // guarded by this
    private final ArrayDeque<FleetEvent> queue = new ArrayDeque<>();
    private final Map<String, FleetEvent> gaps = new LinkedHashMap<>(); // key -> lost(from, to)
    private boolean scheduled, paused, closed;
    private long lost;

    FleetSubscription(String id, int capacity, Session session, Runnable onClose) {
        this.id = id;
        this.capacity = capacity;
        this.session = session;
        this.onClose = onClose;
    }

    String id() {
        return id;
    }

    Session session() {
        return session;
    }

    /** From the fleet receiver's context; never blocks. */
    void offer(FleetEvent e) {
        synchronized (this) {
            if (closed) return;
            if (e.key() == null) {
                queue.add(e);
            } else {
                FleetEvent gap = gaps.get(e.key());
                if (queue.size() >= capacity) {
                    long from = e.isLost() ? e.fromSeq() : e.seq(), to = e.isLost() ? e.toSeq() : e.seq();
                    gaps.put(e.key(), FleetEvent.lost(e.key(), e.node(), e.device(), gap == null ? from : gap.fromSeq(), to));
                    if (!e.isLost()) lost++;
                    return;
                }
                if (gap != null) {
                    gaps.remove(e.key());
                    if (e.isLost()) e = FleetEvent.lost(e.key(), e.node(), e.device(), gap.fromSeq(), e.toSeq());
                    else queue.add(gap);
                }
                queue.add(e);
            }
        }
        schedule();
    }

    private void schedule() {
        synchronized (this) {
            if (scheduled || paused || closed) return;
            scheduled = true;
        }
        session.context().runOnContext(v -> drain());
    }

    /** The connection's writer drained: go on. */
    void resume() {
        synchronized (this) {
            paused = false;
        }
        schedule();
    }

    private void drain() {
        Buffer out = Buffer.buffer(8192);
        boolean more = true;
        try {
            for (int i = 0; i < 512 && more; i++) {
                FleetEvent e;
                synchronized (this) {
                    if (closed) return;
                    e = queue.poll();
                    if (e == null && !gaps.isEmpty()) { // a quiet device's loss is reported once there is room
                        queue.addAll(gaps.values());
                        gaps.clear();
                        e = queue.poll();
                    }
                    if (e == null) {
                        scheduled = false;
                        return;
                    }
                }
                out.appendBytes(e.line());
                if (out.length() >= MAX_GATHER) {
                    write(out);
                    out = Buffer.buffer(8192);
                }
                more = !session.writer().isFull();
            }
        } finally {
            write(out);
        }
        synchronized (this) {
            scheduled = false;
            if (!more) {
                paused = true;
                return;
            }
        }
        schedule();
    }

    private void write(Buffer b) {
        if (b.length() > 0 && !session.isClosed()) session.writer().write(b);
    }

    void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
            queue.clear();
            gaps.clear();
        }
        onClose.run();
    }

    synchronized long lostCount() {
        return lost;
    }
}

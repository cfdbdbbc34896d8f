package org.vfioexport.api;

import io.vertx.core.buffer.Buffer;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventSink;

/**
 * Writes one subscription's events to its connection. Each event's line is encoded once for all subscribers
 * ({@link Event#notificationLine()}); the lines of one delivery batch are gathered and handed to the connection's
 * writer as one write, so a reset's thousands of events cost a few syscalls per subscriber, not one each.
 * Runs on the connection's loop.
 */
final class SubscriberSink implements EventSink {
    /** Gathered bytes beyond which a batch is written out early. */
    private static final int MAX_GATHER = 64 * 1024;

    private final Session session;
    private Buffer gathered;

    SubscriberSink(Session session) {
        this.session = session;
    }

    @Override
    public boolean deliver(Event event) {
        if (gathered == null) gathered = Buffer.buffer(8192);
        gathered.appendBytes(event.notificationLine());
        if (gathered.length() >= MAX_GATHER) flush();
        return !session.writer().isFull();
    }

    @Override
    public void flush() {
        if (gathered == null) return;
        Buffer b = gathered;
        gathered = null;
        if (!session.isClosed()) session.writer().write(b);
    }
}

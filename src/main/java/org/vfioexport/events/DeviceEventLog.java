package org.vfioexport.events;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The event stream of one device: stamps each event with the next sequence number, keeps the last
 * {@code retention} events for replay, and fans each one out to the subscriptions that follow the device.
 *
 * <p>Only the device's own core appends, one step at a time, so sequence numbers are gap-free by construction. The monitor
 * exists for subscribers arriving from other loops: taking "replay up to seq N, then live from N+1" must be
 * atomic with respect to appends, or an event could be missed or seen twice. It is held only for in-memory work.
 */
public final class DeviceEventLog {
    private final String device;
    private final Event[] ring;
    private final List<Subscription> subscribers = new CopyOnWriteArrayList<>();
    private final Consumer<Event> publisher;
    private long seq;

    DeviceEventLog(String device, int retention, Consumer<Event> publisher) {
        this.device = device;
        this.ring = new Event[retention];
        this.publisher = publisher;
    }

    public String device() {
        return device;
    }

    /** Appends an event and returns it; called by the device's core only, one step at a time. */
    public Event append(EventType type, String exportId, Cause cause, String state) {
        return append(type, exportId, cause, state, null);
    }

    /** Appends an event with the revocation handshake's fields ({@link Event.Handshake}, or null). */
    public Event append(EventType type, String exportId, Cause cause, String state, Event.Handshake handshake) {
        Event e;
        synchronized (this) {
            e = new Event(++seq, device, type, exportId, cause, Instant.now(), state, 0, 0, handshake);
            ring[(int) ((e.seq() - 1) % ring.length)] = e;
            for (Subscription s : subscribers) s.offer(e);
        }
        publisher.accept(e);
        return e;
    }

    public synchronized long head() {
        return seq;
    }

    /** Registers {@code s}, first queueing every retained event after {@code since} (or a gap for older ones). */
    synchronized void attach(Subscription s, Long since) {
        if (since != null && since < seq) {
            long oldest = Math.max(1, seq - ring.length + 1);
            long from = since + 1;
            if (from < oldest) {
                s.offerReplay(Event.lost(device, from, oldest - 1));
                from = oldest;
            }
            for (long q = from; q <= seq; q++) s.offerReplay(ring[(int) ((q - 1) % ring.length)]);
        }
        subscribers.add(s);
    }

    void detach(Subscription s) {
        subscribers.remove(s);
    }

    /** The retained events with seq in [from, to], for tests and diagnostics. */
    public synchronized List<Event> retained(long from, long to) {
        long oldest = Math.max(1, seq - ring.length + 1);
        List<Event> out = new ArrayList<>();
        for (long q = Math.max(from, oldest); q <= Math.min(to, seq); q++) out.add(ring[(int) ((q - 1) % ring.length)]);
        return out;
    }

    public int subscriberCount() {
        return subscribers.size();
    }
}

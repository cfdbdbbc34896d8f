package org.vfioexport.events;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The event stream of one device: stamps each event with the next sequence number, keeps the last
 * {@code retention} events for replay, and fans each one out to the subscriptions that follow the device and
 * whose {@link Scope} covers it.
 *
 * <p>Only the device's own core appends, one step at a time, so sequence numbers are gap-free by construction. The monitor
 * exists for subscribers arriving from other loops: taking "replay up to seq N, then live from N+1" must be
 * atomic with respect to appends, or an event could be missed or seen twice. It is held only for in-memory work.
 */
public final class DeviceEventLog {
    private final String device;
    private final Event[] ring;
    // guarded by this. Subscriptions are indexed by scope so that an export event visits only the subscriptions
    // it is in scope for: with 100 subscribers that each follow their own exports, one of 100 (see Scope).
    private final List<Subscription> subscribers = new ArrayList<>();
    private final List<Subscription> unscoped = new ArrayList<>();
    private final Map<String, List<Subscription>> byOwner = new HashMap<>();
    private final Map<String, List<Subscription>> byExport = new HashMap<>();
    /** Exports created and not yet released in this stream: the ones a list scope may name. */
    private final Set<String> current = new HashSet<>();
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
        return append(type, exportId, null, cause, state, null);
    }

    /** Appends an event about an export created by the connection {@code owner}, without handshake fields. */
    public Event append(EventType type, String exportId, String owner, Cause cause, String state) {
        return append(type, exportId, owner, cause, state, null);
    }

    /**
     * Appends an event about an export created by the connection {@code owner} (null for device events), with the
     * revocation handshake's fields ({@link Event.Handshake}, or null); called by the device's core only, one step
     * at a time.
     */
    public Event append(EventType type, String exportId, String owner, Cause cause, String state,
                        Event.Handshake handshake) {
        Event e;
        synchronized (this) {
            e = new Event(++seq, device, type, exportId, owner, cause, Instant.now(), state, 0, 0, handshake);
            ring[(int) ((e.seq() - 1) % ring.length)] = e;
            if (exportId == null) {
                for (Subscription s : subscribers) s.offer(e);
            } else {
                for (Subscription s : unscoped) s.offer(e);
                if (owner != null) offerAll(byOwner.get(owner), e);
                offerAll(byExport.get(exportId), e);
                if (type == EventType.EXPORT_CREATED) current.add(exportId);
                else if (type == EventType.EXPORT_RELEASED && current.remove(exportId)) {
                    byExport.remove(exportId);   // its last event: nobody will need the entry again
                }
            }
        }
        publisher.accept(e);
        return e;
    }

    private static void offerAll(List<Subscription> list, Event e) {
        if (list != null) for (Subscription s : list) s.offer(e);
    }

    public synchronized long head() {
        return seq;
    }

    /**
     * Registers {@code s}, first queueing every retained event in its scope after {@code since} (or a gap for
     * older ones).
     *
     * @return the exports of {@code s}'s list scope this device knows: created and not released, or with an event
     *         among those replayed (empty for the other scopes). The check and the registration are one atomic
     *         step, so an export accepted here gets every later event.
     */
    synchronized Set<String> attach(Subscription s, Long since) {
        Scope scope = s.scope();
        Set<String> known = new HashSet<>();
        if (scope.kind() == Scope.Kind.EXPORTS) {
            for (String id : scope.exportIds()) if (current.contains(id)) known.add(id);
        }
        if (since != null && since < seq) {
            long oldest = Math.max(1, seq - ring.length + 1);
            long from = since + 1;
            if (from < oldest) {
                s.offerReplay(Event.lost(device, from, oldest - 1));
                from = oldest;
            }
            for (long q = from; q <= seq; q++) {
                Event e = ring[(int) ((q - 1) % ring.length)];
                if (!scope.covers(e)) continue;
                s.offerReplay(e);
                if (e.exportId() != null && scope.kind() == Scope.Kind.EXPORTS) known.add(e.exportId());
            }
        }
        subscribers.add(s);
        switch (scope.kind()) {
            case ALL -> unscoped.add(s);
            case OWN -> byOwner.computeIfAbsent(scope.owner(), k -> new ArrayList<>(1)).add(s);
            // an export already released is followed no further: its released event was its last
            case EXPORTS -> {
                for (String id : known) {
                    if (current.contains(id)) byExport.computeIfAbsent(id, k -> new ArrayList<>(1)).add(s);
                }
            }
        }
        return known;
    }

    synchronized void detach(Subscription s) {
        if (!subscribers.remove(s)) return;
        Scope scope = s.scope();
        switch (scope.kind()) {
            case ALL -> unscoped.remove(s);
            case OWN -> removeFrom(byOwner, scope.owner(), s);
            case EXPORTS -> {
                for (String id : scope.exportIds()) removeFrom(byExport, id, s);
            }
        }
    }

    private static void removeFrom(Map<String, List<Subscription>> index, String key, Subscription s) {
        List<Subscription> l = index.get(key);
        if (l != null && l.remove(s) && l.isEmpty()) index.remove(key);
    }

    /** The retained events with seq in [from, to], for tests and diagnostics. */
    public synchronized List<Event> retained(long from, long to) {
        long oldest = Math.max(1, seq - ring.length + 1);
        List<Event> out = new ArrayList<>();
        for (long q = Math.max(from, oldest); q <= Math.min(to, seq); q++) out.add(ring[(int) ((q - 1) % ring.length)]);
        return out;
    }

    public synchronized int subscriberCount() {
        return subscribers.size();
    }
}

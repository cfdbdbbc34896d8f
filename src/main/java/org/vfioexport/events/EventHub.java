package org.vfioexport.events;

import io.vertx.core.Context;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/** All device event logs of one service, and the subscriptions across them. */
public final class EventHub {
    public static final int DEFAULT_RETENTION = 10_000;
    public static final int DEFAULT_QUEUE = 4096;

    private final Map<String, DeviceEventLog> logs = new ConcurrentHashMap<>();
    private final Map<String, Subscription> subscriptions = new ConcurrentHashMap<>();
    private final AtomicLong ids = new AtomicLong();
    /** Events dropped for subscriptions since closed (the live ones keep their own count). */
    private final AtomicLong lostByClosed = new AtomicLong();
    private final int retention;
    private final Consumer<Event> publisher;

    /**
     * @param publisher receives every event after it is stamped (the event bus publication, metrics); it runs on
     *                  the device's loop and must not block
     */
    public EventHub(int retention, Consumer<Event> publisher) {
        this.retention = retention;
        this.publisher = publisher;
    }

    public EventHub() {
        this(DEFAULT_RETENTION, e -> {});
    }

    /** Event-bus address of a device's events (JSON, the protocol's EVENT object); {@link #ALL} carries every device. */
    public static String address(String device) {
        return "vfio-export.events." + device;
    }

    public static final String ALL = "vfio-export.events";

    /**
     * A hub that also publishes every event on the Vert.x event bus, to {@link #address(String)} and {@link #ALL},
     * so other verticles (or other nodes of a clustered event bus) can follow the devices. The publication runs on
     * a context of its own ({@link BusPublisher}), each device's events in seq order; call this off the Vert.x
     * threads (as the daemon does at start) so that context is a new one, not the caller's.
     */
    public static EventHub publishingTo(io.vertx.core.Vertx vertx, int retention) {
        return publishingTo(vertx, retention, e -> {});
    }

    /** As {@link #publishingTo(io.vertx.core.Vertx, int)}, also handing every event to {@code tap} (metrics). */
    public static EventHub publishingTo(io.vertx.core.Vertx vertx, int retention, Consumer<Event> tap) {
        return new EventHub(retention, tap.andThen(new BusPublisher(vertx.eventBus(), vertx.getOrCreateContext())));
    }

    public DeviceEventLog log(String device) {
        return logs.computeIfAbsent(device, d -> new DeviceEventLog(d, retention, publisher));
    }

    /** As {@link #subscribe(Set, Scope, Map, int, Context, EventSink)} with every event of the devices in scope. */
    public Subscription subscribe(Set<String> devices, Map<String, Long> since, int capacity, Context context,
                                  EventSink sink) {
        return subscribe(devices, Scope.ALL, since, capacity, context, sink);
    }

    /**
     * Subscribes {@code sink} (run on {@code context}) to the events of {@code devices} in {@code scope} (devices
     * null: all devices known now; later created logs are not added, the service creates every log at start).
     * {@code since} maps a device to the last seq the subscriber already has: retained events after it, in scope,
     * are replayed first.
     *
     * @return the subscription; its heads are {@link #heads(Collection)} read right after
     * @throws UnknownExports if a list scope names an export none of the devices knows (nothing is subscribed then)
     */
    public Subscription subscribe(Set<String> devices, Scope scope, Map<String, Long> since, int capacity,
                                  Context context, EventSink sink) {
        String id = "sub-" + ids.incrementAndGet();
        Subscription[] holder = new Subscription[1];
        Subscription s = new Subscription(id, devices, scope, capacity, context, sink, () -> {
            if (subscriptions.remove(id) != null) lostByClosed.addAndGet(holder[0].lostCount());
            for (DeviceEventLog l : logs.values()) l.detach(holder[0]);
        });
        holder[0] = s;
        subscriptions.put(id, s);
        Set<String> known = new HashSet<>();
        for (DeviceEventLog l : logs.values()) {
            if (s.wants(l.device())) known.addAll(l.attach(s, since == null ? null : since.get(l.device())));
        }
        if (known.size() < scope.exportIds().size()) {
            // closed before it started: nothing it queued is delivered
            s.close();
            List<String> unknown = new ArrayList<>(scope.exportIds());
            unknown.removeAll(known);
            Collections.sort(unknown);
            throw new UnknownExports(unknown);
        }
        s.start();
        return s;
    }

    /** A list scope named exports that none of the subscribed devices has (or had, within the replay). */
    public static final class UnknownExports extends RuntimeException {
        private final List<String> exportIds;

        UnknownExports(List<String> exportIds) {
            super("no such export: " + String.join(", ", exportIds), null, false, false);
            this.exportIds = List.copyOf(exportIds);
        }

        /** The unknown ones, sorted. */
        public List<String> exportIds() {
            return exportIds;
        }
    }

    public Subscription subscription(String id) {
        return subscriptions.get(id);
    }

    public int subscriberCount() {
        return subscriptions.size();
    }

    /** Events queued for all subscribers and not yet handed to them (a metrics gauge). */
    public long queuedEvents() {
        long n = 0;
        for (Subscription s : subscriptions.values()) n += s.queued();
        return n;
    }

    /** The longest subscriber queue (a metrics gauge). */
    public int deepestQueue() {
        int max = 0;
        for (Subscription s : subscriptions.values()) max = Math.max(max, s.queued());
        return max;
    }

    /** Events dropped so far for subscribers whose queue was full, closed subscriptions included. */
    public long eventsLost() {
        long n = lostByClosed.get();
        for (Subscription s : subscriptions.values()) n += s.lostCount();
        return n;
    }

    /** The last seq of each of {@code devices} (all when null). */
    public Map<String, Long> heads(Collection<String> devices) {
        Map<String, Long> out = new LinkedHashMap<>();
        for (DeviceEventLog l : logs.values()) {
            if (devices == null || devices.contains(l.device())) out.put(l.device(), l.head());
        }
        return out;
    }
}

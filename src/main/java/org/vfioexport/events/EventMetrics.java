package org.vfioexport.events;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Counts events by device and type in a Micrometer registry ({@code vfio_export_events_total{device,type}}).
 * It sits on the event hub's publication path, so every stamped event is counted exactly once, on the device's
 * loop, with one map lookup by device (no key built per event: a reset stamps thousands) and an array by type.
 */
public final class EventMetrics implements Consumer<Event> {
    private static final EventType[] TYPES = EventType.values();

    private final MeterRegistry registry;
    /** Per device, its counters indexed by {@link EventType#ordinal()}, registered on first use. */
    private final Map<String, Counter[]> counters = new ConcurrentHashMap<>();

    public EventMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    @Override
    public void accept(Event e) {
        Counter[] byType = counters.computeIfAbsent(e.device(), d -> new Counter[TYPES.length]);
        int t = e.type().ordinal();
        Counter c = byType[t];
        if (c == null) {
            // one device's events come from its one loop; the registry dedups a racing register anyway
            c = Counter.builder("vfio_export_events_total")
                    .description("events stamped, by device and type")
                    .tag("device", e.device())
                    .tag("type", e.type().wire)
                    .register(registry);
            byType[t] = c;
        }
        c.increment();
    }

    /** The count of {@code type} events of {@code device} so far. */
    public long count(String device, EventType type) {
        Counter[] byType = counters.get(device);
        Counter c = byType == null ? null : byType[type.ordinal()];
        return c == null ? 0 : (long) c.count();
    }
}

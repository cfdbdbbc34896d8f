package org.vfioexport.events;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Counts events by device and type in a Micrometer registry ({@code vfio_export_events_total{device,type}}).
 * It sits on the event hub's publication path, so every stamped event is counted exactly once, on the device's
 * loop, with one map lookup.
 */
public final class EventMetrics implements Consumer<Event> {
    private final MeterRegistry registry;
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();

    public EventMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    @Override
    public void accept(Event e) {
        counters.computeIfAbsent(e.device() + '\u0000' + e.type().wire, k -> Counter.builder("vfio_export_events_total")
                .description("events stamped, by device and type")
                .tag("device", e.device())
                .tag("type", e.type().wire)
                .register(registry)).increment();
    }

    /** The count of {@code type} events of {@code device} so far. */
    public long count(String device, EventType type) {
        Counter c = counters.get(device + '\u0000' + type.wire);
        return c == null ? 0 : (long) c.count();
    }
}

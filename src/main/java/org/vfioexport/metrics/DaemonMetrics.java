package org.vfioexport.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.vfioexport.device.DeviceManager;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventHub;
import org.vfioexport.events.EventMetrics;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.IntSupplier;

/**
 * The daemon's own metrics registry and what feeds it, exported as Prometheus text ({@link #scrape()}: the
 * {@code server.metrics} method and the opt-in metrics port). One registry per daemon, not Micrometer's global one,
 * so that two daemons in one JVM (tests) never add into each other's counters.
 *
 * <p>Export lifecycle counters come from the event path ({@link #events()}), where every stamped event passes once
 * on its device's loop; gauges are read at scrape time from the live objects (volatile counts, concurrent maps);
 * request latencies and errors are recorded by the dispatcher as each answer is decided.
 */
public final class DaemonMetrics {
    /** Request latencies are histograms over this range (a snapshot is microseconds, a reset holds for an FLR). */
    private static final Duration MIN_EXPECTED = Duration.ofNanos(10_000);
    private static final Duration MAX_EXPECTED = Duration.ofSeconds(10);

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final EventMetrics eventCounts = new EventMetrics(registry);
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();
    private final Map<String, Timer> timers = new ConcurrentHashMap<>();
    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition (format 0.0.4) of every meter. */
    public String scrape() {
        return registry.scrape();
    }

    /** Counts every stamped event: the per-type total, and exports created, released, revoked, restored by cause. */
    public Consumer<Event> events() {
        return e -> {
            eventCounts.accept(e);
            String name = switch (e.type()) {
                case EXPORT_CREATED -> "vfio_export_export_creations";
                case EXPORT_RELEASED -> "vfio_export_export_releases";
                case EXPORT_REVOKED -> "vfio_export_export_revocations";
                case EXPORT_RESTORED -> "vfio_export_export_restorations";
                default -> null;
            };
            if (name == null) return;
            // not *_created: OpenMetrics reserves that suffix for a counter's creation time
            String cause = e.cause() == null ? "none" : e.cause().wire;
            counter(name, "exports by device and cause (export events)", "device", e.device(), "cause", cause).increment();
        };
    }

    /**
     * Gauges read at scrape time: live exports per device, open connections, subscribers, events queued for
     * them and the deepest queue, and (a counter) the events dropped for slow subscribers.
     */
    public void watch(DeviceManager devices, EventHub hub, IntSupplier connections) {
        for (String id : devices.ids()) {
            Gauge.builder("vfio_export_live_exports", devices, d -> d.liveExports(id))
                    .description("exports alive (live or revoked), by device").tag("device", id).register(registry);
        }
        // strong: the supplier lives nowhere else, and a gauge holds its object weakly by default
        Gauge.builder("vfio_export_connections", connections, IntSupplier::getAsInt).strongReference(true)
                .description("open client connections").register(registry);
        Gauge.builder("vfio_export_subscribers", hub, EventHub::subscriberCount)
                .description("event subscriptions").register(registry);
        Gauge.builder("vfio_export_subscriber_queued_events", hub, EventHub::queuedEvents)
                .description("events queued for all subscribers, not yet written").register(registry);
        Gauge.builder("vfio_export_subscriber_queue_max", hub, EventHub::deepestQueue)
                .description("events queued for the most backlogged subscriber").register(registry);
        FunctionCounter.builder("vfio_export_events_lost", hub, EventHub::eventsLost)
                .description("events dropped for subscribers whose queue was full (reported to them as events.lost)")
                .register(registry);
    }

    /**
     * One answered request: its latency and, when it failed, its error code. {@code method} must be one of the
     * registered methods or {@code other} (a client's made-up name must not make a series).
     */
    public void request(String method, long startNanos, Integer errorCode) {
        String m = method;
        timer("vfio_export_request", "request latency, from the line read to the answer decided", MIN_EXPECTED,
                "method", m).record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
        if (errorCode != null) {
            counter("vfio_export_request_errors", "requests answered with an error, by method and code",
                    "method", m, "code", Integer.toString(errorCode)).increment();
        }
    }

    /** A line refused before any method ran (not JSON, not a request, a refused batch): {@code method="none"}. */
    public void refused(int errorCode) {
        counter("vfio_export_request_errors", "requests answered with an error, by method and code",
                "method", "none", "code", Integer.toString(errorCode)).increment();
    }

    /** The limits a connection can be refused for at accept, before any hello: the series exist from the start. */
    public static final List<String> CONNECTION_LIMITS = List.of("max_connections_per_uid", "RLIMIT_NOFILE", "fs.file-max");

    /**
     * A connection refused at accept (one error line, then closed, before any hello), by error code and the limit
     * that refused it: {@code max_connections_per_uid}, or the fd limits {@code RLIMIT_NOFILE} / {@code fs.file-max}.
     */
    public void connectionRefused(int errorCode, String limit) {
        connectionRefusals(errorCode, limit).increment();
    }

    /**
     * Registers the refusal series at zero, so that a scrape shows them before the first refusal and the fd
     * shortage path (which must not load classes: that takes an fd) finds them made.
     */
    public void registerConnectionRefusals(int errorCode) {
        for (String limit : CONNECTION_LIMITS) connectionRefusals(errorCode, limit);
    }

    private Counter connectionRefusals(int errorCode, String limit) {
        return counter("vfio_export_connections_refused", "connections refused at accept, by error code and limit",
                "code", Integer.toString(errorCode), "limit", limit);
    }

    /** A reset's exclusive section (revoke, VFIO_DEVICE_RESET, restore), as the device measured it. */
    public void reset(String device, long durationMicros) {
        timer("vfio_export_reset", "device resets: the exclusive section, revoke to restore", MIN_EXPECTED,
                "device", device).record(durationMicros, TimeUnit.MICROSECONDS);
    }

    /** A revocation handshake of a reset or memory-off: from its first notice to the answer or deadline that ended it. */
    public void handshake(String device, long micros) {
        timer("vfio_export_revocation_handshake", "revocation handshakes: the wait for watchers to quiesce",
                MIN_EXPECTED, "device", device).record(micros, TimeUnit.MICROSECONDS);
    }

    /** A memory toggle, from request to the device's answer. */
    public void memoryToggle(String device, boolean enabled, long startNanos) {
        timer("vfio_export_memory_toggle", "memory enable/disable, request to the device's answer", MIN_EXPECTED,
                "device", device, "enabled", Boolean.toString(enabled))
                .record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
    }

    private Counter counter(String name, String description, String... tags) {
        return counters.computeIfAbsent(name + String.join("\u0000", tags),
                k -> Counter.builder(name).description(description).tags(tags).register(registry));
    }

    private Timer timer(String name, String description, Duration min, String... tags) {
        return timers.computeIfAbsent(name + String.join("\u0000", tags),
                k -> Timer.builder(name).description(description).tags(tags).publishPercentileHistogram()
                        .minimumExpectedValue(min).maximumExpectedValue(MAX_EXPECTED).register(registry));
    }
}

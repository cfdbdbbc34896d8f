package org.vfioexport.events;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.vfioexport.testutil.Wait;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sequence numbers, retention and replay, bounded subscriber queues with explicit gaps, event-bus publication. */
class EventHubTest {
    private static final String DEV = "0000:01:00.0", OTHER = "0000:02:00.0";
    private static Vertx vertx;

    @BeforeAll
    static void vertx() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    /** A subscriber that records what it gets, and can stop reading. */
    private static final class Recorder implements EventSink {
        final List<Event> got = new ArrayList<>();
        volatile boolean full;

        @Override
        public synchronized boolean deliver(Event e) {
            got.add(e);
            notifyAll();
            return !full;
        }

        synchronized List<Event> await(Predicate<List<Event>> done) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (!done.test(got)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) throw new AssertionError("subscriber did not receive in time; got " + got.size());
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            return List.copyOf(got);
        }
    }

    private static void emit(DeviceEventLog log, int n) {
        for (int i = 0; i < n; i++) log.append(EventType.EXPORT_CREATED, "x" + i, Cause.CLIENT, "live");
    }

    private static List<Long> seqs(List<Event> evs) {
        return evs.stream().map(Event::seq).toList();
    }

    @Test
    @DisplayName("guarantee 1: per-device seq from 1, gap-free, in order, devices independent")
    void sequence() throws Exception {
        EventHub hub = new EventHub();
        DeviceEventLog a = hub.log(DEV), b = hub.log(OTHER);
        Recorder r = new Recorder();
        hub.subscribe(Set.of(DEV), null, 1000, vertx.getOrCreateContext(), r);
        emit(a, 3);
        emit(b, 2);
        emit(a, 2);
        List<Event> got = r.await(l -> l.size() >= 5);
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L), seqs(got));
        assertTrue(got.stream().allMatch(e -> e.device().equals(DEV)), "only the device subscribed to");
        assertEquals(Map.of(DEV, 5L, OTHER, 2L), hub.heads(null));
    }

    @Test
    @DisplayName("guarantee 6: since replays retained events, then live ones, nothing twice; older ones are a gap")
    void replay() throws Exception {
        EventHub hub = new EventHub(100, e -> {});
        DeviceEventLog log = hub.log(DEV);
        emit(log, 150);
        Recorder fromRetained = new Recorder(), fromTooOld = new Recorder();
        hub.subscribe(null, Map.of(DEV, 120L), 1000, vertx.getOrCreateContext(), fromRetained);
        hub.subscribe(null, Map.of(DEV, 10L), 1000, vertx.getOrCreateContext(), fromTooOld);
        emit(log, 5);
        List<Event> got = fromRetained.await(l -> l.size() >= 35);
        assertEquals(121L, got.getFirst().seq());
        assertEquals(155L, got.getLast().seq());
        assertEquals(35, got.size());
        List<Event> old = fromTooOld.await(l -> l.size() >= 106);
        assertEquals(EventType.EVENTS_LOST, old.getFirst().type());
        assertEquals(11L, old.getFirst().fromSeq());
        assertEquals(50L, old.getFirst().toSeq());
        assertEquals(51L, old.get(1).seq());
        EventInvariants inv = new EventInvariants();
        // the invariants checker follows the same rules: a stream starting with a gap at 11 needs seq 1..10 first
        for (long s = 1; s <= 10; s++) inv.accept(new Event(s, DEV, EventType.DEVICE_STATE, null, Cause.RESET, java.time.Instant.now(), "ready", 0, 0));
        old.forEach(inv::accept);
        assertTrue(inv.violations().isEmpty(), inv.violations().toString());
    }

    @Test
    @DisplayName("a subscriber that stops reading gets events.lost naming the exact gap, and never slows the device")
    void slowSubscriber() throws Exception {
        EventHub hub = new EventHub();
        DeviceEventLog log = hub.log(DEV);
        Recorder slow = new Recorder(), fast = new Recorder();
        slow.full = true;                                            // reads one event, then stops
        Context ctx = vertx.getOrCreateContext();
        Subscription s = hub.subscribe(null, null, 10, ctx, slow);
        hub.subscribe(null, null, 100_000, vertx.getOrCreateContext(), fast);
        emit(log, 1);
        slow.await(l -> l.size() == 1);
        emit(log, 5000);                                             // returns at once: nobody waits for the slow one
        assertEquals(5001, log.head());
        assertEquals(5001, fast.await(l -> l.size() >= 5001).size(), "the other subscriber got everything");
        assertEquals(10, s.queued());
        slow.full = false;
        CompletableFuture<Void> resumed = new CompletableFuture<>();
        ctx.runOnContext(v -> {
            s.resume();
            resumed.complete(null);
        });
        resumed.get(10, TimeUnit.SECONDS);
        List<Event> got = slow.await(l -> l.size() >= 12);
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L, 11L), seqs(got.subList(0, 11)));
        Event gap = got.get(11);
        assertEquals(EventType.EVENTS_LOST, gap.type());
        assertEquals(12L, gap.fromSeq());
        assertEquals(5001L, gap.toSeq());
        emit(log, 1);
        assertEquals(5002L, slow.await(l -> l.size() >= 13).get(12).seq(), "delivery goes on after the gap");
        assertEquals(4990, s.lostCount());
    }

    @Test
    @DisplayName("events are published on the Vert.x event bus, per device and on the all-devices address")
    void eventBus() throws Exception {
        EventMetrics metrics = new EventMetrics(new io.micrometer.core.instrument.simple.SimpleMeterRegistry());
        EventHub hub = EventHub.publishingTo(vertx, 100, metrics);
        CompletableFuture<JsonObject> perDevice = new CompletableFuture<>(), all = new CompletableFuture<>();
        vertx.eventBus().<JsonObject>consumer(EventHub.address(DEV), m -> perDevice.complete(m.body())).completion()
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        vertx.eventBus().<JsonObject>consumer(EventHub.ALL, m -> all.complete(m.body())).completion()
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        hub.log(DEV).append(EventType.EXPORT_REVOKED, "0000:01:00.0/1", Cause.RESET, null);
        JsonObject e = perDevice.get(10, TimeUnit.SECONDS);
        assertEquals("export.revoked", e.getString("type"));
        assertEquals("reset", e.getString("cause"));
        assertEquals(1L, e.getLong("seq"));
        assertEquals(e, all.get(10, TimeUnit.SECONDS));
        assertEquals(1, metrics.count(DEV, EventType.EXPORT_REVOKED), "counted once in the metrics");
        assertEquals(0, metrics.count(DEV, EventType.EXPORT_RESTORED));
    }

    @Test
    @DisplayName("a burst of events reaches event-bus consumers complete and in seq order, published off the device's loop")
    void eventBusBurst() throws Exception {
        Vertx vx = Vertx.vertx(); // its own bus: the interceptor below sees only this test's messages
        try {
            EventHub hub = EventHub.publishingTo(vx, 100, e -> {});
            Set<Context> publishers = ConcurrentHashMap.newKeySet();
            vx.eventBus().addOutboundInterceptor(dc -> {
                publishers.add(Vertx.currentContext());
                dc.next();
            });
            List<Long> perDevice = Collections.synchronizedList(new ArrayList<>());
            List<String> all = Collections.synchronizedList(new ArrayList<>());
            vx.eventBus().<JsonObject>consumer(EventHub.address(DEV), m -> perDevice.add(m.body().getLong("seq")))
                    .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            vx.eventBus().<JsonObject>consumer(EventHub.ALL,
                            m -> all.add(m.body().getString("device") + "#" + m.body().getLong("seq")))
                    .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            int n = 2000;
            CompletableFuture<Void> appended = new CompletableFuture<>();
            Context loop = vx.getOrCreateContext(); // the device loop here
            loop.runOnContext(v -> {
                for (int i = 1; i <= n; i++) {
                    hub.log(DEV).append(EventType.EXPORT_REVOKED, DEV + "/" + i, "c" + i % 7, Cause.RESET, null);
                    hub.log(OTHER).append(EventType.EXPORT_REVOKED, OTHER + "/" + i, "c" + i % 7, Cause.RESET, null);
                }
                appended.complete(null);
            });
            appended.get(20, TimeUnit.SECONDS);
            Wait.until("every event on both addresses (per device " + perDevice.size() + ", all " + all.size() + ")",
                    20_000, () -> perDevice.size() >= n && all.size() >= 2 * n);
            List<Long> want = new ArrayList<>();
            for (long q = 1; q <= n; q++) want.add(q);
            assertEquals(want, List.copyOf(perDevice), "the device's address: every event once, in seq order");
            for (String d : List.of(DEV, OTHER)) {
                List<Long> got = new ArrayList<>();
                for (String x : List.copyOf(all)) {
                    if (x.startsWith(d + "#")) got.add(Long.parseLong(x.substring(d.length() + 1)));
                }
                assertEquals(want, got, "the all-devices address, events of " + d + ": every one once, in seq order");
            }
            assertFalse(publishers.contains(loop), "the bus publication runs off the context that stamps the events");
        } finally {
            vx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }
}

package org.vfioexport.events;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Scopes at the hub: devices offer a scoped subscription only its events (an out-of-scope event never takes room in
 * its queue), a loss it reports spans in-scope seqs only, and the scoped checker's rules.
 */
class ScopeTest {
    private static final String DEV = "0000:01:00.0";
    private static Vertx vertx;

    @BeforeAll
    static void vertx() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

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
                if (left <= 0) throw new AssertionError("subscriber did not receive in time; got " + got);
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            return List.copyOf(got);
        }
    }

    private static String x(int n) {
        return DEV + "/" + n;
    }

    @Test
    @DisplayName("out-of-scope events never reach a stalled scoped subscriber's queue: no loss, nothing queued")
    void outOfScopeEventsCostTheSubscriberNothing() throws Exception {
        EventHub hub = new EventHub();
        DeviceEventLog log = hub.log(DEV);
        Recorder own = new Recorder(), list = new Recorder();
        own.full = list.full = true;              // each reads one event, then stops reading
        Subscription o = hub.subscribe(null, Scope.own("conn-1"), null, 4, vertx.getOrCreateContext(), own);
        log.append(EventType.EXPORT_CREATED, x(1), "conn-1", Cause.CLIENT, "live");
        log.append(EventType.EXPORT_CREATED, x(2), "conn-2", Cause.CLIENT, "live");
        Subscription l = hub.subscribe(null, Scope.exports(Set.of(x(1))), null, 4, vertx.getOrCreateContext(), list);
        own.await(g -> g.size() == 1);
        for (int i = 0; i < 10_000; i++) log.append(EventType.EXPORT_REVOKED, x(2), "conn-2", Cause.RESET, null);
        assertEquals(0, o.queued(), "another connection's events are not queued for the own scope");
        assertEquals(0, l.queued(), "unlisted exports' events are not queued for the list scope");
        assertEquals(0, o.lostCount() + l.lostCount());
        log.append(EventType.DEVICE_STATE, null, null, Cause.RESET, "resetting");
        log.append(EventType.EXPORT_REVOKED, x(1), "conn-1", Cause.RESET, null);
        assertEquals(2, o.queued(), "its device event and its export's revoke");
        list.full = false;
        CompletableFuture<Void> resumed = new CompletableFuture<>();
        Context ctx = vertx.getOrCreateContext();
        ctx.runOnContext(v -> { l.resume(); resumed.complete(null); });
        resumed.get(10, TimeUnit.SECONDS);
        List<Event> got = list.await(g -> g.size() == 2);
        assertEquals(List.of(10_003L, 10_004L), got.stream().map(Event::seq).toList(), "the device event and x1's revoke");
    }

    @Test
    @DisplayName("a scoped subscriber's events.lost spans the first to the last in-scope seq it dropped")
    void lossOfAScopedSubscriberNamesInScopeSeqs() throws Exception {
        EventHub hub = new EventHub();
        DeviceEventLog log = hub.log(DEV);
        Recorder r = new Recorder();
        r.full = true;
        Context ctx = vertx.getOrCreateContext();
        Subscription s = hub.subscribe(null, Scope.own("a"), null, 2, ctx, r);
        log.append(EventType.EXPORT_CREATED, x(1), "a", Cause.CLIENT, "live");
        r.await(g -> g.size() == 1);                  // seq 1 delivered, then the subscriber stops reading
        for (int i = 2; i <= 20; i++) {               // seq i: odd ones are a's, even ones b's
            log.append(EventType.EXPORT_CREATED, x(i), i % 2 == 1 ? "a" : "b", Cause.CLIENT, "live");
        }
        // 3 and 5 fill the queue of 2; a's 7..19 are dropped; b's are never offered
        assertEquals(7, s.lostCount());
        r.full = false;
        CompletableFuture<Void> resumed = new CompletableFuture<>();
        ctx.runOnContext(v -> { s.resume(); resumed.complete(null); });
        resumed.get(10, TimeUnit.SECONDS);
        List<Event> got = r.await(g -> g.size() == 4);
        assertEquals(List.of(1L, 3L, 5L), got.subList(0, 3).stream().map(Event::seq).toList());
        assertEquals(EventType.EVENTS_LOST, got.get(3).type());
        assertEquals(7L, got.get(3).fromSeq());
        assertEquals(19L, got.get(3).toSeq());
        EventInvariants inv = EventInvariants.scoped();
        got.forEach(inv::accept);
        assertEquals(List.of(), inv.violations());
    }

    @Test
    @DisplayName("a list scope's unknown exports refuse the whole subscription, atomically with its registration")
    void unknownExportsRefuseTheSubscription() throws Exception {
        EventHub hub = new EventHub();
        DeviceEventLog log = hub.log(DEV);
        log.append(EventType.EXPORT_CREATED, x(1), "a", Cause.CLIENT, "live");
        log.append(EventType.EXPORT_CREATED, x(2), "a", Cause.CLIENT, "live");
        log.append(EventType.EXPORT_RELEASED, x(2), "a", Cause.CLIENT, null);
        EventHub.UnknownExports e = assertThrows(EventHub.UnknownExports.class, () -> hub.subscribe(null,
                Scope.exports(Set.of(x(1), x(2), "zz")), null, 10, vertx.getOrCreateContext(), new Recorder()));
        assertEquals(List.of(x(2), "zz"), e.exportIds());
        assertEquals(0, hub.subscriberCount());
        assertEquals(0, log.subscriberCount());
        // with a replay that holds x2's events it is known: the replay shows its release
        Recorder r = new Recorder();
        hub.subscribe(null, Scope.exports(Set.of(x(1), x(2))), Map.of(DEV, 0L), 10, vertx.getOrCreateContext(), r);
        assertEquals(List.of(1L, 2L, 3L), r.await(g -> g.size() == 3).stream().map(Event::seq).toList());
    }

    private static Event ev(long seq, EventType t, String export, String state) {
        return new Event(seq, DEV, t, export, null, Cause.RESET, Instant.EPOCH, state, 0, 0);
    }

    @Test
    @DisplayName("the scoped checker: skipped seqs are fine, going back is not, the export rules still hold")
    void scopedChecker() {
        EventInvariants ok = EventInvariants.scoped();
        ok.accept(ev(3, EventType.EXPORT_REVOKED, x(1), null));        // a listed export, joined mid-life
        ok.accept(ev(5, EventType.DEVICE_STATE, null, "resetting"));
        ok.accept(ev(9, EventType.EXPORT_RESTORED, x(1), null));
        ok.accept(Event.lost(DEV, 10, 14));
        ok.accept(ev(20, EventType.DEVICE_STATE, null, "ready"));
        assertEquals(List.of(), ok.violations());

        EventInvariants bad = EventInvariants.scoped();
        bad.accept(ev(4, EventType.EXPORT_CREATED, x(1), "live"));
        bad.accept(ev(4, EventType.DEVICE_STATE, null, "resetting"));   // the same seq twice
        bad.accept(ev(6, EventType.EXPORT_RESTORED, x(2), null));        // x1 live at resetting, never revoked
        bad.accept(Event.lost(DEV, 5, 7));                               // a lost range before what was seen
        assertEquals(3, bad.violations().size(), bad.violations().toString());
        assertTrue(bad.violations().get(0).contains("seq 4 after 4"), bad.violations().toString());
        assertTrue(bad.violations().get(1).contains("neither revoked nor released"), bad.violations().toString());
        assertTrue(bad.violations().get(2).contains("lost range starts at 5"), bad.violations().toString());

        EventInvariants strict = new EventInvariants();                  // the unscoped checker refuses a skip
        strict.accept(ev(1, EventType.DEVICE_STATE, null, "resetting"));
        strict.accept(ev(3, EventType.DEVICE_STATE, null, "ready"));
        assertEquals(1, strict.violations().size());
    }
}

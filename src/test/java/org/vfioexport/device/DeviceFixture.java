package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventHub;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.events.EventType;
import org.vfioexport.events.Subscription;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.sim.SimKernel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** A device manager over a simulated kernel, with a subscriber that records every event. */
final class DeviceFixture implements AutoCloseable {
    static final long WAIT_MS = 20_000;

    final Vertx vertx;
    final SimKernel kernel;
    final EventHub hub = new EventHub();
    final DeviceManager devices;
    private final List<Event> events = new ArrayList<>();
    private final Subscription recorder;

    DeviceFixture(Vertx vertx, SimKernel kernel) {
        this(vertx, kernel, Discipline.MESSAGE_ORDER);
    }

    /** Devices on the event loop of the calling thread's context, as the daemon places them. */
    DeviceFixture(Vertx vertx, SimKernel kernel, Discipline discipline) {
        this(vertx, kernel, discipline, DeviceManager.Placement.CALLER_LOOP);
    }

    DeviceFixture(Vertx vertx, SimKernel kernel, Discipline discipline, DeviceManager.Placement placement) {
        this.vertx = vertx;
        this.kernel = kernel;
        this.devices = await(DeviceManager.start(vertx, kernel, hub, java.util.Map.of(), discipline, placement));
        this.recorder = hub.subscribe(null, null, Integer.MAX_VALUE, vertx.getOrCreateContext(), e -> {
            synchronized (events) {
                events.add(e);
                events.notifyAll();
            }
            return true;
        });
    }

    DeviceHandle device(String id) {
        return devices.get(id);
    }

    /** The device's core, whichever scheduler drives it (its try-get probe is set here). */
    DeviceCore core(String id) {
        return switch (devices.get(id)) {
            case MessageOrderDevice m -> m.core();
            case RwLockDevice r -> r.core();
            default -> throw new IllegalStateException("unknown scheduler for " + id);
        };
    }

    ManagedDevice managed(String id) {
        return (ManagedDevice) devices.get(id);
    }

    static <T> T await(Future<T> f) {
        try {
            return f.toCompletionStage().toCompletableFuture().get(WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new AssertionError("operation failed: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError("operation did not complete within " + WAIT_MS + " ms");
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** The failure of {@code f}, which must fail. */
    static Throwable failure(Future<?> f) {
        try {
            f.toCompletionStage().toCompletableFuture().get(WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            throw new AssertionError("operation did not complete within " + WAIT_MS + " ms", e);
        }
        throw new AssertionError("operation succeeded but was expected to fail");
    }

    Export export(String device, int region, long offset, long length) {
        return await(device(device).export(new ExportRequest("test", region, List.of(new DmaRange(offset, length)),
                DmaBufRequest.O_RDWR | DmaBufRequest.O_CLOEXEC)));
    }

    /** Waits (bounded) until the recorder has seen every event of {@code device} up to its current head. */
    List<Event> eventsOf(String device) {
        long head = hub.log(device).head();
        return awaitEvents(device, l -> l.size() >= head);
    }

    List<Event> awaitEvents(String device, Predicate<List<Event>> done) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        synchronized (events) {
            while (true) {
                List<Event> mine = events.stream().filter(e -> e.device().equals(device)).toList();
                if (done.test(mine)) return mine;
                long left = deadline - System.nanoTime();
                if (left <= 0) throw new AssertionError("events of " + device + " not seen in time; have " + mine);
                try {
                    TimeUnit.NANOSECONDS.timedWait(events, left);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            }
        }
    }

    /** "type[:export-suffix][:cause][:state]" lines, for readable assertions. */
    static List<String> shape(List<Event> evs) {
        List<String> out = new ArrayList<>();
        for (Event e : evs) {
            String s = e.type().wire;
            if (e.exportId() != null) s += ":" + e.exportId().substring(e.exportId().indexOf('/') + 1);
            if (e.cause() != null) s += ":" + e.cause().wire;
            if (e.state() != null) s += ":" + e.state();
            out.add(s);
        }
        return out;
    }

    /** Every recorded event, checked against the protocol's invariants. */
    EventInvariants checkInvariants() {
        EventInvariants inv = new EventInvariants();
        hub.heads(null).keySet().forEach(this::eventsOf);   // wait until the recorder has everything
        List<Event> all;
        synchronized (events) {
            all = List.copyOf(events);
        }
        for (Event e : all) inv.accept(e);
        assertTrue(inv.violations().isEmpty(), "invariants broken: " + inv.violations());
        return inv;
    }

    long count(String device, EventType type) {
        return eventsOf(device).stream().filter(e -> e.type() == type).count();
    }

    @Override
    public void close() {
        recorder.close();
        await(devices.shutdown());
        kernel.close();
    }
}

package org.vfioexport.load.jmh;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;
import org.vfioexport.events.EventHub;
import org.vfioexport.events.EventType;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * Event fan-out as the device loop pays for it: one append to a device's log, offered to every subscription
 * (each drained on its own Vert.x context, as the sessions do). Queues are large enough that nothing is dropped
 * in steady state; the cost per subscriber is the interesting number.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class FanoutBench {
    @Param({"1", "10", "100"})
    int subscribers;

    Vertx vertx;
    DeviceEventLog log;
    final LongAdder delivered = new LongAdder();

    @Setup(Level.Trial)
    public void setup() {
        vertx = Vertx.vertx();
        EventHub hub = new EventHub();
        log = hub.log("0000:01:00.0");
        for (int i = 0; i < subscribers; i++) {
            Context c = vertx.getOrCreateContext();
            hub.subscribe(null, null, 1 << 16, c, e -> {
                delivered.increment();
                return true;
            });
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        vertx.close().await();
    }

    @Benchmark
    public Object appendAndOffer() {
        return log.append(EventType.EXPORT_CREATED, "0000:01:00.0/1", Cause.CLIENT, "live");
    }
}

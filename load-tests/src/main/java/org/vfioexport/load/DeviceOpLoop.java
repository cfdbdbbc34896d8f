package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.HdrHistogram.Histogram;
import org.vfioexport.client.vertx.VfioExportClient;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client that resets a device (or flips its memory decoding) in a loop, one request at a time with a 2 ms pause
 * between them, for a fixed time: the storm the churn clients run against. Records each request's round trip.
 */
final class DeviceOpLoop {
    private final Path socket;
    private final String device;
    private final boolean memory;
    private final long millis;
    final Histogram latency = Stats.histogram();
    final AtomicLong done = new AtomicLong();
    final AtomicLong busy = new AtomicLong();
    final List<String> errors = Collections.synchronizedList(new ArrayList<>());
    private Thread thread;

    /** {@code memory}: {@code device.set_memory} off and on alternately, else {@code device.reset}. */
    DeviceOpLoop(Path socket, String device, boolean memory, long millis) {
        this.socket = socket;
        this.device = device;
        this.memory = memory;
        this.millis = millis;
    }

    String what() {
        return memory ? "memory on/off flapping" : "reset storm";
    }

    DeviceOpLoop start() {
        thread = new Thread(this::loop, "storm-" + device);
        thread.start();
        return this;
    }

    void join() throws InterruptedException {
        thread.join();
    }

    private void loop() {
        try (VfioExportClient s = VfioExportClient.connect(socket)) {
            long end = System.nanoTime() + millis * 1_000_000;
            boolean on = false;
            while (System.nanoTime() < end) {
                long t0 = System.nanoTime();
                JsonObject p = new JsonObject().put("device", device);
                var m = memory ? s.call("device.set_memory", p.put("enabled", on)) : s.call("device.reset", p);
                latency.recordValue(System.nanoTime() - t0);
                if (m.object().containsKey("error")) {
                    if (m.object().getJsonObject("error").getInteger("code") == -32004) busy.incrementAndGet();
                    else errors.add(m.object().encode());
                } else {
                    done.incrementAndGet();
                    on = !on;
                }
                Thread.sleep(2);
            }
            // on is the next value to ask for: true means the last toggle that went through turned decoding off
            if (memory && on) s.request("device.set_memory", new JsonObject().put("device", device).put("enabled", true));
        } catch (Exception e) {
            errors.add(e.toString());
        }
    }
}

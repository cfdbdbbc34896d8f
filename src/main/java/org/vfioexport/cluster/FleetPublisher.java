package org.vfioexport.cluster;

import io.vertx.core.Context;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.events.ContextDrainQueue;
import org.vfioexport.events.Event;

import java.util.List;
import java.util.function.Consumer;

/**
 * This node's device events, out to the fleet: each event the hub stamps is queued here (on the device's loop,
 * never blocking it) and published on {@link FleetNode#EVENTS} in batches from one context, so that a reset's
 * thousands of events are a few cluster messages and one device's events leave in seq order. The queue is bounded:
 * beyond {@link #MAX_QUEUED} events are dropped, and every receiver reports the hole as {@code events.lost} (the
 * seq of the next event a receiver sees tells it exactly what is missing).
 */
final class FleetPublisher implements Consumer<Event> {
    static final int MAX_QUEUED = 65_536;
    private static final int BATCH = 1024;

    private final EventBus bus;
    private final String node;
    private final String nodeId;
    private final ExportIndex exports;
    private final ContextDrainQueue<Event> queue;

    FleetPublisher(EventBus bus, Context context, String node, String nodeId, ExportIndex exports) {
        this.bus = bus;
        this.node = node;
        this.nodeId = nodeId;
        this.exports = exports;
        this.queue = new ContextDrainQueue<>(context, MAX_QUEUED, this::publish);
    }

    @Override
    public void accept(Event e) {
        exports.apply(e);
        queue.offer(e);
    }

    private void publish(List<Event> batch) {
        for (int from = 0; from < batch.size(); from += BATCH) {
            JsonArray events = new JsonArray();
            for (Event e : batch.subList(from, Math.min(batch.size(), from + BATCH))) events.add(e.toJson());
            bus.publish(FleetNode.EVENTS, new JsonObject().put("node", node).put("id", nodeId).put("events", events));
        }
    }

    long dropped() {
        return queue.dropped();
    }
}

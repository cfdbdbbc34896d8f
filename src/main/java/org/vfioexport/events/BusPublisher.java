package org.vfioexport.events;

import io.vertx.core.Context;
import io.vertx.core.eventbus.EventBus;
import io.vertx.core.json.JsonObject;

import java.util.List;
import java.util.function.Consumer;

/**
 * Every stamped event, out on the Vert.x event bus ({@link EventHub#address(String)} and {@link EventHub#ALL}, the
 * protocol's EVENT object as JSON), from a context of its own rather than from the device's loop.
 *
 * <p>Why: building the JSON and the two publications cost more than everything else a stamp does, and a reset
 * stamps one event per export on the device's loop; the clients' revocations waited behind them. Here the loop
 * only queues the event; the publisher's context drains the queue in order, so each device's events still go out
 * in seq order (one device appends from one loop, and the queue keeps that order), only later. The queue is not
 * bounded: the bus publication is what it was before, not slower, so it keeps up as it did.
 */
final class BusPublisher implements Consumer<Event> {
    private final EventBus bus;
    private final ContextDrainQueue<Event> queue;

    BusPublisher(EventBus bus, Context context) {
        this.bus = bus;
        this.queue = new ContextDrainQueue<>(context, Integer.MAX_VALUE, this::publish);
    }

    @Override
    public void accept(Event e) {
        queue.offer(e);
    }

    private void publish(List<Event> batch) {
        for (Event e : batch) {
            JsonObject json = e.toJson();
            bus.publish(EventHub.address(e.device()), json);
            bus.publish(EventHub.ALL, json);
        }
    }
}

package org.vfioexport.events;

/**
 * Where a subscription delivers, called on the subscriber's own context, in order.
 * Returning false means "my output is full": delivery pauses until {@link Subscription#resume()}.
 */
@FunctionalInterface
public interface EventSink {
    boolean deliver(Event event);
}

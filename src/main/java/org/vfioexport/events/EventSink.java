package org.vfioexport.events;

/**
 * Where a subscription delivers, called on the subscriber's own context, in order.
 * Returning false means "my output is full": delivery pauses until {@link Subscription#resume()}.
 */
@FunctionalInterface
public interface EventSink {
    boolean deliver(Event event);

    /**
     * The end of a delivery batch (a drain task hands over up to a few hundred events, then calls this): a sink
     * that gathers events writes them out here, in one go.
     */
    default void flush() {}
}

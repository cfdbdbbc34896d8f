package org.vfioexport.api;

import io.vertx.core.Future;

/**
 * Cluster mode's part of the local protocol: {@code events.subscribe {fleet: true}} and the unsubscribe of such a
 * subscription. Null in {@link Service} when cluster mode is off. The {@code fleet.*} methods themselves are
 * registered by the cluster module.
 */
public interface Fleet {
    /** {@code events.subscribe} with {@code fleet}; counts against the caller's subscription limit. */
    Future<Reply> subscribe(Session session, Params params);

    /** Ends {@code id} if it is one of {@code session}'s fleet subscriptions; false if it is not. */
    boolean unsubscribe(Session session, String id);
}

package org.vfioexport.api;

import io.vertx.core.Future;

/**
 * One protocol method. {@link #call} runs on the connection's loop: it checks every param before any side effect
 * (throwing {@link RpcException} for shape errors) and returns the outcome as a future.
 */
@FunctionalInterface
public interface RpcMethod {
    Future<Reply> call(Session session, Params params);
}

package org.vfioexport.client;

import io.vertx.core.json.JsonObject;

/** An error response: the protocol's code, the server's message and its data. */
public final class RpcError extends Exception {
    private final int code;
    private final JsonObject data;

    public RpcError(int code, String message, JsonObject data) {
        super(message);
        this.code = code;
        this.data = data;
    }

    public static RpcError of(JsonObject error) {
        return new RpcError(error.getInteger("code"), error.getString("message"), error.getJsonObject("data"));
    }

    public int code() {
        return code;
    }

    /** The error's data object, or null. */
    public JsonObject data() {
        return data;
    }
}

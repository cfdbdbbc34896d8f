package org.vfioexport.client.vertx;

import io.vertx.core.json.JsonObject;

/** {@link org.vfioexport.client.RpcError} with its data as a {@link JsonObject}. */
public final class RpcError extends Exception {
    private final int code;
    private final JsonObject data;

    public RpcError(int code, String message, JsonObject data) {
        super(message);
        this.code = code;
        this.data = data;
    }

    static RpcError of(org.vfioexport.client.RpcError e) {
        RpcError r = new RpcError(e.code(), e.getMessage(), JsonText.object(e.data()));
        r.setStackTrace(e.getStackTrace());
        return r;
    }

    public static RpcError of(JsonObject error) {
        return of(org.vfioexport.client.RpcError.of(JsonText.plainObject(error)));
    }

    public int code() {
        return code;
    }

    /** The error's data object, or null. */
    public JsonObject data() {
        return data;
    }
}

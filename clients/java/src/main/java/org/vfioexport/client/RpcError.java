package org.vfioexport.client;

import java.util.Map;

/** An error response: the protocol's code, the server's message and its data (docs/protocol.md, errors). */
public final class RpcError extends Exception {
    private final int code;
    private final Map<String, Object> data;

    public RpcError(int code, String message, Map<String, Object> data) {
        super(message);
        this.code = code;
        this.data = data;
    }

    /** The error of a response's {@code error} member. */
    public static RpcError of(Map<String, Object> error) {
        return new RpcError((int) Values.number(error.get("code"), "error.code"), String.valueOf(error.get("message")),
                Values.object(error.get("data")));
    }

    public int code() {
        return code;
    }

    /** The error's data object, or null. */
    public Map<String, Object> data() {
        return data;
    }
}

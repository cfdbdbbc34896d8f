package org.vfioexport.api;

/**
 * The one table of protocol error codes, with the message used when the situation has nothing more precise to
 * say. Every error the service sends comes from here, so codes and their meaning cannot drift apart.
 */
public enum ErrorCode {
    PARSE_ERROR(-32700, "parse error: the line is not JSON"),
    INVALID_REQUEST(-32600, "invalid request: not a JSON-RPC 2.0 request object"),
    METHOD_NOT_FOUND(-32601, "method not found"),
    INVALID_PARAMS(-32602, "invalid params"),
    INTERNAL_ERROR(-32603, "internal error"),
    KERNEL_REFUSED(-32000, "the kernel refused the call"),
    NO_SUCH_DEVICE(-32001, "no such device"),
    NO_SUCH_EXPORT(-32002, "no such export"),
    PERMISSION_DENIED(-32003, "permission denied by policy"),
    BUSY(-32004, "device busy: a reset holds it, retry later"),
    QUOTA_EXCEEDED(-32005, "quota exceeded"),
    DEVICE_UNAVAILABLE(-32006, "device unavailable"),
    SHUTTING_DOWN(-32007, "server shutting down"),
    NO_HANDSHAKE(-32008, "no revocation handshake awaits this answer");

    public final int code;
    public final String message;

    ErrorCode(int code, String message) {
        this.code = code;
        this.message = message;
    }

    public static ErrorCode of(int code) {
        for (ErrorCode c : values()) if (c.code == code) return c;
        return null;
    }
}

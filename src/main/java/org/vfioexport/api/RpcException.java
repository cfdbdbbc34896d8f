package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.vfioexport.device.DeviceException;
import org.vfioexport.kernel.KernelException;

/**
 * A request that ends in a protocol error: the code (from {@link ErrorCode}), a message a person can read, and
 * the code's {@code data} object (or null). Thrown while checking params, or carried by a failed future.
 */
public final class RpcException extends RuntimeException {
    private final ErrorCode code;
    private final JsonObject data;

    public RpcException(ErrorCode code, String message, JsonObject data) {
        super(message, null, false, false);
        this.code = code;
        this.data = data;
    }

    public ErrorCode code() {
        return code;
    }

    public JsonObject data() {
        return data;
    }

    public JsonObject toJson() {
        JsonObject e = new JsonObject().put("code", code.code).put("message", getMessage());
        if (data != null) e.put("data", data);
        return e;
    }

    public static RpcException invalidParams(String field, String message) {
        return new RpcException(ErrorCode.INVALID_PARAMS, message, new JsonObject().put("field", field));
    }

    public static RpcException noSuchDevice(String device) {
        return new RpcException(ErrorCode.NO_SUCH_DEVICE, "no such device: " + device,
                new JsonObject().put("device", device));
    }

    public static RpcException noSuchExport(String exportId) {
        return new RpcException(ErrorCode.NO_SUCH_EXPORT, "no such export: " + exportId,
                new JsonObject().put("export_id", exportId));
    }

    /** -32005: the configured limit {@code setting} (its value {@code max}) is reached. */
    public static RpcException limit(String setting, long max, String message) {
        return new RpcException(ErrorCode.QUOTA_EXCEEDED, message, new JsonObject().put("limit", setting).put("max", max));
    }

    public static RpcException denied(String message) {
        return new RpcException(ErrorCode.PERMISSION_DENIED, message, null);
    }

    public static RpcException shuttingDown() {
        return new RpcException(ErrorCode.SHUTTING_DOWN, ErrorCode.SHUTTING_DOWN.message, null);
    }

    /** The protocol error for any failure of a device call; anything unexpected is an internal error. */
    public static RpcException from(Throwable t) {
        if (t instanceof RpcException r) return r;
        if (t instanceof KernelException k) {
            return new RpcException(ErrorCode.KERNEL_REFUSED, k.getMessage(), new JsonObject()
                    .put("errno", k.errno()).put("name", k.errnoName()).put("op", k.op()));
        }
        if (t instanceof DeviceException d) {
            return switch (d.kind()) {
                case UNAVAILABLE -> new RpcException(ErrorCode.DEVICE_UNAVAILABLE, d.getMessage(),
                        new JsonObject().put("device", d.device()));
                case BUSY -> new RpcException(ErrorCode.BUSY, d.getMessage(), new JsonObject().put("device", d.device()));
                case NO_SUCH_EXPORT -> new RpcException(ErrorCode.NO_SUCH_EXPORT, d.getMessage(),
                        new JsonObject().put("export_id", d.exportId()));
                case SHUTTING_DOWN -> new RpcException(ErrorCode.SHUTTING_DOWN, d.getMessage(), null);
                case NOT_WATCHING -> new RpcException(ErrorCode.NO_HANDSHAKE, d.getMessage(),
                        new JsonObject().put("export_id", d.exportId()).put("reason", "not-watching"));
                case NO_HANDSHAKE -> new RpcException(ErrorCode.NO_HANDSHAKE, d.getMessage(),
                        new JsonObject().put("export_id", d.exportId()).put("reason", "no-handshake"));
            };
        }
        return new RpcException(ErrorCode.INTERNAL_ERROR, ErrorCode.INTERNAL_ERROR.message + ": " + t, null);
    }
}

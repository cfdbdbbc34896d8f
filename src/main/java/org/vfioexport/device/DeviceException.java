package org.vfioexport.device;

/**
 * A refusal by the device layer that is not the kernel's (those are {@code KernelException}): the kind maps
 * one-to-one onto a protocol error code.
 */
public final class DeviceException extends Exception {
    public enum Kind {
        /** The device is closed, removed or failed (-32006). */
        UNAVAILABLE,
        /** A reset holds the device; try again (-32004). */
        BUSY,
        /** No such export, or not the caller's (-32002). */
        NO_SUCH_EXPORT,
        /** The service is shutting down (-32007). */
        SHUTTING_DOWN,
        /** {@code export.quiesced} from a connection that does not watch the export (-32008). */
        NOT_WATCHING,
        /** {@code export.quiesced} that no revocation handshake waits for (-32008). */
        NO_HANDSHAKE
    }

    private final Kind kind;
    private final String device;
    private final String exportId;

    public DeviceException(Kind kind, String device, String exportId, String message) {
        super(message, null, false, false);
        this.kind = kind;
        this.device = device;
        this.exportId = exportId;
    }

    public Kind kind() {
        return kind;
    }

    public String device() {
        return device;
    }

    public String exportId() {
        return exportId;
    }
}

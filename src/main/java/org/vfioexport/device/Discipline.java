package org.vfioexport.device;

/** How a device serialises its operations. */
public enum Discipline {
    /** One event-loop context per device, operations ordered by message (the service's design). */
    MESSAGE_ORDER,
    /** A per-device read-write lock, as the kernel's memory_lock (the load tests' comparison). */
    RW_LOCK;

    public static Discipline parse(String s) {
        return switch (s) {
            case "message-order", "verticle" -> MESSAGE_ORDER;
            case "lock", "rw-lock" -> RW_LOCK;
            default -> throw new IllegalArgumentException("discipline must be message-order or lock, got " + s);
        };
    }
}

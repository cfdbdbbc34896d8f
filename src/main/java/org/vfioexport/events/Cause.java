package org.vfioexport.events;

/** Why an event happened, with its protocol name. */
public enum Cause {
    CLIENT("client"),
    SESSION_END("session-end"),
    /** The daemon could not hand the export's fd to its client (no fd to spare): it released it at once. */
    UNDELIVERABLE("undeliverable"),
    RESET("reset"),
    MEMORY_DISABLE("memory-disable"),
    MEMORY_ENABLE("memory-enable"),
    DEVICE_CLOSE("device-close"),
    SHUTDOWN("shutdown");

    public final String wire;

    Cause(String wire) {
        this.wire = wire;
    }
}

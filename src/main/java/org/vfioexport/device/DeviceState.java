package org.vfioexport.device;

/** A device's state as clients see it. */
public enum DeviceState {
    READY("ready"), RESETTING("resetting"), MEMORY_DISABLED("memory-disabled"), CLOSED("closed");

    public final String wire;

    DeviceState(String wire) {
        this.wire = wire;
    }
}

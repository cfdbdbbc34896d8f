package org.vfioexport.device;

/** An export's state as clients see it. */
public enum ExportState {
    LIVE("live"), REVOKED("revoked"), RELEASED("released");

    public final String wire;

    ExportState(String wire) {
        this.wire = wire;
    }
}

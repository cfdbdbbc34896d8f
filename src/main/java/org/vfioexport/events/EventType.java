package org.vfioexport.events;

/** Event types, with their protocol names. */
public enum EventType {
    EXPORT_CREATED("export.created"),
    /** The revocation handshake began for a watched export: its watchers were asked to quiesce. */
    EXPORT_REVOKING("export.revoking"),
    EXPORT_REVOKED("export.revoked"),
    EXPORT_RESTORED("export.restored"),
    EXPORT_RELEASED("export.released"),
    DEVICE_STATE("device.state"),
    EVENTS_LOST("events.lost");

    public final String wire;

    EventType(String wire) {
        this.wire = wire;
    }
}

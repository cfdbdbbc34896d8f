package org.vfioexport.events;

import java.util.Set;

/**
 * Which export events of its devices a subscription receives: all of them, those of the exports one connection
 * created, or those of a list of exports. Device events ({@code device.state}) are always in scope, whatever the
 * scope: they frame every export's revokes and restores.
 *
 * <p>Devices filter at the source ({@link DeviceEventLog} indexes its subscriptions by scope), so an event out of a
 * subscription's scope is never queued for it, never encoded for it, and never looked at by it.
 */
public final class Scope {
    public enum Kind {
        ALL("all"), OWN("own"), EXPORTS("exports");

        public final String wire;

        Kind(String wire) {
            this.wire = wire;
        }
    }

    public static final Scope ALL = new Scope(Kind.ALL, null, Set.of());

    private final Kind kind;
    private final String owner;
    private final Set<String> exportIds;

    private Scope(Kind kind, String owner, Set<String> exportIds) {
        this.kind = kind;
        this.owner = owner;
        this.exportIds = exportIds;
    }

    /** The exports created by the connection {@code owner} (an export's owner, {@code Export.owner()}). */
    public static Scope own(String owner) {
        return new Scope(Kind.OWN, owner, Set.of());
    }

    /** The exports named in {@code exportIds} (may be empty: device events only). */
    public static Scope exports(Set<String> exportIds) {
        return new Scope(Kind.EXPORTS, null, Set.copyOf(exportIds));
    }

    public Kind kind() {
        return kind;
    }

    /** The owning connection, for {@link Kind#OWN}; null otherwise. */
    public String owner() {
        return owner;
    }

    /** The listed exports, for {@link Kind#EXPORTS}; empty otherwise. */
    public Set<String> exportIds() {
        return exportIds;
    }

    /** True if a subscription of this scope receives {@code e}. */
    public boolean covers(Event e) {
        if (e.exportId() == null) return true;   // device events, and events.lost
        return switch (kind) {
            case ALL -> true;
            case OWN -> owner.equals(e.owner());
            case EXPORTS -> exportIds.contains(e.exportId());
        };
    }

    @Override
    public String toString() {
        return switch (kind) {
            case ALL -> "all";
            case OWN -> "own(" + owner + ")";
            case EXPORTS -> "exports" + exportIds;
        };
    }
}

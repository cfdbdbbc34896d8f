package org.vfioexport.device;

import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventType;

import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * One revoke or restore pass over a device's exports, with the kernel's try-get rule, and the point where a
 * release that the pass meets takes effect for the device. {@link DeviceCore} runs its passes through here, inside
 * an exclusive operation's step (its scheduler provides the exclusion: the device's loop, or the write lock).
 *
 * <p>An export whose release has begun is skipped, as {@code get_file_active} skips it; every other one is held by
 * a temporary reference while its state changes and its event is stamped. A skipped export is not left for later:
 * its release <em>takes effect</em> right there (the device's {@code releaseTakesEffect}: the export leaves the
 * table and {@code export.released} is stamped, with the release's cause). The same happens right after the pass's
 * own event for an export whose release began while the pass held it. So every export a pass meets comes out
 * revoked (or restored) or released, in the pass's events, and the stream never shows an export live through a
 * reset or a memory-off because its release had begun. The final release (closing the buffer, completing the
 * caller's promise) still runs later, after the exclusive operation, and stamps nothing if a pass already did.
 */
final class ExportPass {
    private ExportPass() {}

    /**
     * Moves every export in state {@code from} to {@code to}, stamping {@code type} with {@code cause}; makes the
     * release of every export found releasing take effect.
     *
     * @param probe runs right after each successful try-get (tests build the try-get scenarios with it)
     * @param releaseTakesEffect the device's step for an export whose release the pass found begun: it removes the
     *        export from {@code exports} (the pass iterates a copy) and stamps {@code export.released}, once
     * @param fields the revocation handshake's fields of an export's event (null for none)
     * @return how many exports changed state
     */
    static int run(Collection<Export> exports, ExportState from, ExportState to, EventType type, Cause cause,
                   DeviceEventLog log, Consumer<Export> probe, Consumer<Export> releaseTakesEffect,
                   Function<Export, Event.Handshake> fields) {
        int n = 0;
        for (Export e : List.copyOf(exports)) {
            if (!e.tryGet()) {
                // release has begun: skip it, as get_file_active does, and let the release take effect here, so
                // the export is not left live (or revoked) in the stream through this operation
                releaseTakesEffect.accept(e);
                continue;
            }
            try {
                probe.accept(e);
                if (e.state() == from) {
                    e.state(to);
                    log.append(type, e.id(), e.owner(), cause, null, fields.apply(e));
                    n++;
                }
            } finally {
                e.put();       // if it was the last reference, the final release is queued behind this operation
            }
            if (e.releaseBegun()) releaseTakesEffect.accept(e);   // began while the pass held it
        }
        return n;
    }

    /** The revoke pass; {@code fields} gives a watched export's handshake outcome for its {@code export.revoked}. */
    static int revoke(Collection<Export> exports, Cause cause, DeviceEventLog log, Consumer<Export> probe,
                      Consumer<Export> releaseTakesEffect, Function<Export, Event.Handshake> fields) {
        return run(exports, ExportState.LIVE, ExportState.REVOKED, EventType.EXPORT_REVOKED, cause, log, probe,
                releaseTakesEffect, fields);
    }

    static int restore(Collection<Export> exports, Cause cause, DeviceEventLog log, Consumer<Export> probe,
                       Consumer<Export> releaseTakesEffect) {
        return run(exports, ExportState.REVOKED, ExportState.LIVE, EventType.EXPORT_RESTORED, cause, log, probe,
                releaseTakesEffect, e -> null);
    }

    /** Stamps the export's {@code export.released}, with its release's cause; the device calls it once. */
    static void stampReleased(Export e, DeviceEventLog log) {
        e.state(ExportState.RELEASED);
        log.append(EventType.EXPORT_RELEASED, e.id(), e.owner(), e.releaseCause(), null, null);
    }
}

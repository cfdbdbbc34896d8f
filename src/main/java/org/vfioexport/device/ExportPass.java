package org.vfioexport.device;

import org.vfioexport.events.Cause;
import org.vfioexport.events.DeviceEventLog;
import org.vfioexport.events.EventType;

import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * One revoke or restore pass over a device's exports, with the kernel's try-get rule: an export whose release has
 * begun is skipped, every other one is held by a temporary reference while its state changes and its event is
 * stamped. Both disciplines run their passes through here; the caller provides the exclusion (the device's loop,
 * or the write lock).
 */
final class ExportPass {
    private ExportPass() {}

    /**
     * Moves every export in state {@code from} to {@code to}, stamping {@code type} with {@code cause}.
     *
     * @param probe runs right after each successful try-get (tests build the try-get scenarios with it)
     * @return how many exports changed
     */
    static int run(Collection<Export> exports, ExportState from, ExportState to, EventType type, Cause cause,
                   DeviceEventLog log, Consumer<Export> probe) {
        int n = 0;
        for (Export e : List.copyOf(exports)) {
            if (!e.tryGet()) continue;           // release has begun: skip it, as get_file_active does
            probe.accept(e);
            if (e.state() == from) {
                e.state(to);
                log.append(type, e.id(), cause, null);
                n++;
            }
            e.put();
        }
        return n;
    }

    static int revoke(Collection<Export> exports, Cause cause, DeviceEventLog log, Consumer<Export> probe) {
        return run(exports, ExportState.LIVE, ExportState.REVOKED, EventType.EXPORT_REVOKED, cause, log, probe);
    }

    static int restore(Collection<Export> exports, Cause cause, DeviceEventLog log, Consumer<Export> probe) {
        return run(exports, ExportState.REVOKED, ExportState.LIVE, EventType.EXPORT_RESTORED, cause, log, probe);
    }
}

package org.vfioexport.app;

import io.vertx.core.json.JsonObject;
import org.vfioexport.api.Service;
import org.vfioexport.audit.Audit;
import org.vfioexport.audit.AuditJournal;
import org.vfioexport.audit.AuditSettings;
import org.vfioexport.audit.Who;

import java.io.IOException;
import java.nio.file.Path;

/** Opens the daemon's audit journal as configured (docs/audit.md), or none when {@code audit.enabled} is false. */
final class AuditJournals {
    private AuditJournals() {}

    static Audit open(AuditSettings settings, String backend, Path socket) throws StartupException {
        if (!settings.enabled()) return Audit.OFF;
        try {
            return AuditJournal.open(settings, Who.self(), new JsonObject().put("version", Service.VERSION)
                    .put("backend", backend).put("socket", socket.toAbsolutePath().toString()));
        } catch (IOException e) {
            throw new StartupException("cannot open the audit journal " + settings.path() + ": " + e.getMessage(), e);
        }
    }
}

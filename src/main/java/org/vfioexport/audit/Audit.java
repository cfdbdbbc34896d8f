package org.vfioexport.audit;

import io.vertx.core.Future;
import io.vertx.core.json.JsonObject;

/** Where the service records who did what: the journal, or nothing ({@link #OFF}, {@code audit.enabled} false). */
public interface Audit {
    /**
     * Queues a record (built with {@link AuditRecord#of}); never blocks. The future completes once it is written
     * to the file (fsynced too when {@code fsync_ms} is 0), or is lost: it never fails, the service goes on.
     */
    Future<Void> append(JsonObject record);

    /** Searches the journal off the event loops, after every record queued before. */
    Future<JsonObject> query(AuditQuery query);

    boolean enabled();

    /**
     * Records that the policy refused a request of {@code who} ({@code connection.refused}), at most once per
     * second per uid (the record counts those suppressed before it).
     */
    void refused(Who who, String method);

    /**
     * Records a connection refused at accept, before any hello ({@code connection.refused} with the {@code limit}
     * and the {@code error} it was sent): over {@code max_connections_per_uid}, or the daemon out of fds. Throttled
     * per uid as {@link #refused} is.
     */
    default void refusedConnection(Who who, String limit, int errorCode, String message) {
    }

    /** Writes {@code daemon.stop}, fsyncs and closes (at the end of the daemon's stop). */
    void close();

    Audit OFF = new Audit() {
        @Override
        public Future<Void> append(JsonObject record) {
            return Future.succeededFuture();
        }

        @Override
        public Future<JsonObject> query(AuditQuery query) {
            return Future.failedFuture(new IllegalStateException("the audit journal is disabled (audit.enabled)"));
        }

        @Override
        public boolean enabled() {
            return false;
        }

        @Override
        public void refused(Who who, String method) {
        }

        @Override
        public void close() {
        }
    };
}

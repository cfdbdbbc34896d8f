package org.vfioexport.api;

import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.audit.Audit;
import org.vfioexport.audit.AuditJournal;
import org.vfioexport.audit.AuditQuery;
import org.vfioexport.audit.AuditRecord;
import org.vfioexport.audit.Who;
import org.vfioexport.device.Export;
import org.vfioexport.events.Cause;
import org.vfioexport.kernel.DmaRange;

import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.function.Supplier;

/**
 * The audit journal's side of the protocol: the methods that change something, wrapped where they are
 * registered, record who called them, about what, and how it ended; their answer waits until the record is
 * written (a client never holds an fd the journal does not know of, even if the daemon dies the next moment).
 * Every other release of an export (its connection closed, its fd undeliverable, its device closed, shutdown)
 * is recorded when it is final, with its cause. And {@code audit.query}.
 */
final class Audited {
    private Audited() {}

    /** What a method's record says beyond who called it: from its params and, when it succeeded, its result. */
    private interface Details {
        void fill(JsonObject record, Session s, Params p, Reply reply);
    }

    static RpcMethod exportCreate(RpcMethod m) {
        return wrap(AuditRecord.EXPORT_CREATE, m, (r, s, p, reply) -> {
            Export e = reply == null ? null : reply.export();
            if (e == null) {
                param(r, "device", () -> p.string("device"));
                param(r, "region", () -> p.u32("region"));
                return;
            }
            JsonArray ranges = new JsonArray();
            for (DmaRange x : e.ranges()) ranges.add(new JsonObject().put("offset", Wire.u64(x.offset())).put("length", Wire.u64(x.length())));
            r.put("device", e.device()).put("export_id", e.id()).put("region", e.region()).put("ranges", ranges)
                    .put("size", Wire.u64(e.size()));
            recordOtherRelease(s, e); // after this record was queued: its release comes after it in the journal
        });
    }

    static RpcMethod exportRelease(RpcMethod m) {
        return (s, p) -> {
            // the export's device, looked up before the release makes the session forget the export
            Export known = null;
            try {
                known = s.ownedExport(p.string("export_id"));
            } catch (RpcException e) {
                // no well-typed export_id: the method refuses it, and the record says so
            }
            String device = known == null ? null : known.device();
            return call(AuditRecord.EXPORT_RELEASE, m, s, p, (r, s2, p2, reply) -> {
                if (device != null) r.put("device", device);
                param(r, "export_id", () -> p2.string("export_id"));
                r.put("cause", Cause.CLIENT.wire);
            });
        };
    }

    static RpcMethod deviceReset(RpcMethod m) {
        return wrap(AuditRecord.DEVICE_RESET, m, (r, s, p, reply) -> {
            param(r, "device", () -> p.string("device"));
            if (reply != null) copy(reply.result(), r, "revoked", "restored", "duration_us", "acked", "timed_out");
        });
    }

    static RpcMethod deviceSetMemory(RpcMethod m) {
        return wrap(AuditRecord.DEVICE_SET_MEMORY, m, (r, s, p, reply) -> {
            param(r, "device", () -> p.string("device"));
            param(r, "enabled", () -> p.bool("enabled"));
            if (reply != null) copy(reply.result(), r, "revoked", "restored", "acked", "timed_out");
        });
    }

    /** The policy refused {@code method} to this client (it is then disconnected). */
    static void refused(Session s, String method) {
        s.service().audit().refused(s.who(), method);
    }

    private static RpcMethod wrap(String event, RpcMethod m, Details details) {
        return (s, p) -> call(event, m, s, p, details);
    }

    /** Calls {@code m}; once it has ended, records the outcome and answers when the record is written. */
    private static Future<Reply> call(String event, RpcMethod m, Session s, Params p, Details details) {
        Future<Reply> f;
        try {
            f = m.call(s, p);
        } catch (RuntimeException e) { // a shape error is a refused request too
            f = Future.failedFuture(e);
        }
        return f.transform(ar -> {
            JsonObject r = AuditRecord.of(event, s.who());
            RpcException error = ar.failed() ? RpcException.from(ar.cause()) : null;
            details.fill(r, s, p, ar.succeeded() ? ar.result() : null);
            AuditRecord.outcome(r, error == null ? null : error.code().code, error == null ? null : error.getMessage());
            return s.service().audit().append(r).transform(x -> same(ar));
        });
    }

    private static <T> Future<T> same(AsyncResult<T> ar) {
        return ar.succeeded() ? Future.succeededFuture(ar.result()) : Future.failedFuture(ar.cause());
    }

    /** Records the release of {@code e} once final, unless its client asked for it (that request records itself). */
    private static void recordOtherRelease(Session s, Export e) {
        Audit audit = s.service().audit();
        Who who = s.who();
        e.whenReleased().thenRun(() -> {
            Cause cause = e.releaseCause();
            if (cause == Cause.CLIENT) return;
            audit.append(AuditRecord.of(AuditRecord.EXPORT_RELEASE, who).put("device", e.device())
                    .put("export_id", e.id()).put("cause", cause.wire).put("ok", true));
        });
    }

    /** Puts a param's value when it is there and well-typed (a refused request may have neither). */
    private static void param(JsonObject r, String name, Supplier<Object> value) {
        try {
            Object v = value.get();
            if (v != null) r.put(name, v);
        } catch (RpcException e) {
            // absent or mistyped: the record's error says what was wrong
        }
    }

    private static void copy(JsonObject from, JsonObject to, String... names) {
        for (String n : names) if (from != null && from.containsKey(n)) to.put(n, from.getValue(n));
    }

    // ---- audit.query ------------------------------------------------------------------------------------------

    /**
     * {@code audit.query}: root and the daemon's own user see every record; any other allowed user sees its own
     * (and asking for another uid is -32602).
     */
    static Future<Reply> query(Session s, Params p) {
        p.only("device", "uid", "event", "since", "until", "after_seq", "limit");
        String device = p.optString("device");
        Long uid = p.has("uid") ? p.u32("uid") : null;
        String event = p.optString("event");
        Instant since = instant(p, "since");
        Instant until = instant(p, "until");
        long afterSeq = p.has("after_seq") ? p.u64("after_seq") : 0;
        if (afterSeq < 0) afterSeq = Long.MAX_VALUE; // a u64 beyond any seq
        long limit = p.has("limit") ? p.u64("limit") : AuditQuery.DEFAULT_LIMIT;
        if (limit < 1 || limit > AuditQuery.MAX_LIMIT) {
            throw RpcException.invalidParams("limit", "field 'limit' is " + Long.toUnsignedString(limit) + "; it must be 1 to "
                    + AuditQuery.MAX_LIMIT);
        }
        long me = Integer.toUnsignedLong(s.peer().uid());
        boolean seesAll = s.peer().uid() == 0 || s.peer().uid() == s.service().policy().daemonUid();
        if (!seesAll && uid != null && uid != me) {
            throw RpcException.invalidParams("uid", "uid " + me + " may query only its own records (uid " + me
                    + "); root and the daemon's user see every uid's");
        }
        AuditQuery q = new AuditQuery(device, uid, event, since, until, afterSeq, (int) limit, seesAll ? null : me);
        return s.service().audit().query(q).transform(ar -> {
            if (ar.succeeded()) return Future.succeededFuture(Reply.of(ar.result()));
            if (ar.cause() instanceof AuditJournal.TooManyQueries t) {
                return Future.failedFuture(RpcException.limit("audit_queries", AuditJournal.MAX_QUERIES, t.getMessage()
                        + "; retry later"));
            }
            return Future.failedFuture(ar.cause());
        });
    }

    private static Instant instant(Params p, String name) {
        String v = p.optString(name);
        if (v == null) return null;
        try {
            return Instant.parse(v);
        } catch (DateTimeParseException e) {
            throw RpcException.invalidParams(name, "field '" + name + "' is not an ISO-8601 instant in UTC or with an "
                    + "offset, such as 2026-01-31T12:00:00Z or 2026-01-31T13:00:00.5+01:00: '" + v + "'");
        }
    }
}

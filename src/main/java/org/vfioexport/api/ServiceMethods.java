package org.vfioexport.api;

import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.device.DeviceHandle;
import org.vfioexport.device.DeviceSnapshot;
import org.vfioexport.device.Export;
import org.vfioexport.device.ExportRequest;
import org.vfioexport.device.HandshakeOutcome;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventHub;
import org.vfioexport.events.Scope;
import org.vfioexport.events.Subscription;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.OpenFlag;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The protocol's methods. Each checks its params completely before it calls a device. */
public final class ServiceMethods {
    private ServiceMethods() {}

    /**
     * Every method, registered here and nowhere else. The importer methods exist where the backend has an importer
     * a client can drive: the simulated kernel's, or iommufd on a Linux kernel with it. The methods that
     * change something are recorded in the audit journal ({@link Audited}); {@code audit.query} exists while it is
     * enabled.
     */
    public static MethodRegistry registry(boolean importers, boolean audit) {
        MethodRegistry r = new MethodRegistry();
        r.register("rpc.methods", (s, p) -> {
            p.only();
            return ok(new JsonObject().put("methods", new JsonArray(s.service().methods().names())));
        });
        r.register("server.info", ServiceMethods::serverInfo);
        r.register("server.metrics", (s, p) -> {
            p.only();
            return ok(new JsonObject().put("format", "prometheus-text-0.0.4").put("text", s.service().metrics().scrape()));
        });
        r.register("device.list", ServiceMethods::deviceList);
        r.register("device.get", ServiceMethods::deviceGet);
        r.register("device.reset", Audited.deviceReset(ServiceMethods::deviceReset));
        r.register("device.set_memory", Audited.deviceSetMemory(ServiceMethods::deviceSetMemory));
        r.register("export.create", Audited.exportCreate(ServiceMethods::exportCreate));
        r.register("export.release", Audited.exportRelease(ServiceMethods::exportRelease));
        r.register("export.get", ServiceMethods::exportGet);
        r.register("export.list", ServiceMethods::exportList);
        r.register("export.watch", ServiceMethods::exportWatch);
        r.register("export.quiesced", ServiceMethods::exportQuiesced);
        r.register("events.subscribe", ServiceMethods::eventsSubscribe);
        r.register("events.unsubscribe", ServiceMethods::eventsUnsubscribe);
        if (audit) r.register("audit.query", Audited::query);
        if (importers) {
            r.register("importer.attach", ServiceMethods::importerAttach);
            r.register("importer.map", ServiceMethods::importerMap);
            r.register("importer.unmap", ServiceMethods::importerUnmap);
            r.register("importer.get", ServiceMethods::importerGet);
            r.register("importer.detach", ServiceMethods::importerDetach);
        }
        return r;
    }

    private static Future<Reply> ok(JsonObject result) {
        return Future.succeededFuture(Reply.now(result));
    }

    private static Future<Reply> serverInfo(Session s, Params p) {
        p.only();
        Service svc = s.service();
        return ok(new JsonObject().put("version", Service.VERSION).put("backend", svc.backend()).put("pid", svc.pid())
                .put("uptime_ms", svc.uptimeMillis()).put("devices", s.visibleDevices().size())
                .put("exports", svc.devices().liveExports()).put("subscribers", svc.hub().subscriberCount())
                .put("clients", svc.sessions().size()));
    }

    private static Future<Reply> deviceList(Session s, Params p) {
        p.only();
        List<Future<DeviceSnapshot>> all = new ArrayList<>();
        for (String id : s.visibleDevices()) all.add(s.device(id).describe());
        return Future.all(all).map(cf -> {
            JsonArray out = new JsonArray();
            for (Future<DeviceSnapshot> f : all) out.add(Wire.device(f.result()));
            return Reply.of(new JsonObject().put("devices", out));
        });
    }

    private static Future<Reply> deviceGet(Session s, Params p) {
        p.only("device");
        DeviceHandle h = s.device(p.string("device"));
        return h.describe().map(d -> Reply.of(Wire.device(d)));
    }

    private static Future<Reply> deviceReset(Session s, Params p) {
        p.only("device", "quiesce_ms");
        String device = p.string("device");
        DeviceHandle h = s.device(device);
        long quiesce = quiesceMillis(s, p, device);
        return h.reset(quiesce).onSuccess(r -> {
                    s.service().metrics().reset(r.device(), r.durationMicros());
                    handshakeMetric(s, r.device(), r.handshake());
                })
                .map(r -> Reply.of(handshake(new JsonObject().put("device", r.device()).put("revoked", r.revoked())
                .put("restored", r.restored()).put("duration_us", r.durationMicros()), r.handshake())));
    }

    private static Future<Reply> deviceSetMemory(Session s, Params p) {
        p.only("device", "enabled", "quiesce_ms");
        String device = p.string("device");
        boolean enabled = p.bool("enabled");
        DeviceHandle h = s.device(device);
        long quiesce = quiesceMillis(s, p, device);
        long start = System.nanoTime();
        return h.setMemory(enabled, quiesce).onSuccess(r -> {
                    s.service().metrics().memoryToggle(r.device(), enabled, start);
                    handshakeMetric(s, r.device(), r.handshake());
                })
                .map(r -> Reply.of(handshake(new JsonObject().put("device", r.device())
                .put("memory_enabled", r.memoryEnabled()).put("revoked", r.revoked()).put("restored", r.restored()),
                        r.handshake())));
    }

    /**
     * The revocation handshake's deadline for this call: {@code quiesce_ms} if given (at most the configured
     * maximum, else -32602), the device's configured deadline otherwise.
     */
    private static long quiesceMillis(Session s, Params p, String device) {
        HandshakeSettings hs = s.service().handshake();
        if (!p.has("quiesce_ms")) return hs.deadlineFor(device);
        long v = p.u64("quiesce_ms");
        if (v < 0 || v > hs.maxDeadlineMs()) {
            throw RpcException.invalidParams("quiesce_ms", "quiesce_ms " + Long.toUnsignedString(v) + " is above the maximum "
                    + hs.maxDeadlineMs() + " ms (handshake.max_deadline_ms)");
        }
        return v;
    }

    /** The handshake's outcome in a reset's or memory toggle's result: counts of watches that answered or not. */
    private static JsonObject handshake(JsonObject result, HandshakeOutcome o) {
        return result.put("acked", o.acked()).put("timed_out", o.timedOut()).put("quiesce_us", o.micros());
    }

    private static void handshakeMetric(Session s, String device, HandshakeOutcome o) {
        if (o.happened()) s.service().metrics().handshake(device, o.micros());
    }

    private static Future<Reply> exportCreate(Session s, Params p) {
        p.only("device", "region", "ranges", "offset", "length", "open_flags");
        String device = p.string("device");
        long region = p.u32("region");
        List<DmaRange> ranges = new ArrayList<>();
        if (p.has("ranges")) {
            if (p.has("offset") || p.has("length")) {
                throw RpcException.invalidParams(p.has("offset") ? "offset" : "length",
                        "give either 'ranges' or 'offset' and 'length', not both");
            }
            JsonArray a = p.array("ranges");
            for (int i = 0; i < a.size(); i++) {
                Params e = p.element("ranges", a, i).only("offset", "length");
                ranges.add(new DmaRange(e.u64("offset"), e.u64("length")));
            }
        } else {
            if (!p.has("offset") && !p.has("length")) {
                throw RpcException.invalidParams("ranges", "missing field 'ranges' (or 'offset' and 'length')");
            }
            ranges.add(new DmaRange(p.u64("offset"), p.u64("length")));
        }
        int openFlags = openFlags(p);
        DeviceHandle h = s.device(device);
        s.reserveExport();
        ExportRequest req = new ExportRequest(s.id(), region, ranges, openFlags);
        Future<Void> room = s.roomForOneMoreFd();
        return room.compose(v -> s.here(h.export(req))).transform(ar -> {
            if (ar.failed()) {
                s.unreserveExport();
                Throwable t = ar.cause();
                if (t instanceof KernelException k) {
                    return Future.failedFuture(ExportErrors.explain(k, region, ranges, s.service().regions(device)));
                }
                return Future.failedFuture(t);
            }
            Export e = ar.result();
            if (!s.adopt(e)) return Future.failedFuture(RpcException.shuttingDown());
            return Future.succeededFuture(new Reply(Wire.export(e), e, false));
        });
    }

    private static int openFlags(Params p) {
        if (!p.has("open_flags")) return DmaBufRequest.DEFAULT_OPEN_FLAGS;
        List<String> names = p.stringList("open_flags");
        int flags = 0;
        for (int i = 0; i < names.size(); i++) {
            OpenFlag f = OpenFlag.byWireName(names.get(i));
            if (f == null) {
                throw RpcException.invalidParams("open_flags[" + i + "]", "unknown open flag '"
                        + names.get(i) + "'; known: cloexec, rdwr, rdonly");
            }
            flags |= f.bits;
        }
        return flags;
    }

    private static Future<Reply> exportRelease(Session s, Params p) {
        p.only("export_id");
        String id = p.string("export_id");
        Export e = s.export(id);
        return s.release(e, Cause.CLIENT).map(x -> Reply.of(new JsonObject().put("export_id", id).put("released", true)));
    }

    private static Future<Reply> exportGet(Session s, Params p) {
        p.only("export_id");
        return ok(Wire.export(s.export(p.string("export_id"))));
    }

    private static Future<Reply> exportList(Session s, Params p) {
        p.only("device");
        String device = p.optString("device");
        if (device != null) s.device(device);
        JsonArray out = new JsonArray();
        for (Export e : s.exports()) if (device == null || device.equals(e.device())) out.add(Wire.export(e));
        return ok(new JsonObject().put("exports", out));
    }

    /**
     * {@code export.watch}: with {@code ack} true (the default) this connection is consulted before a reset or
     * memory-off revokes the export; {@code ack} false ends the watch. Only the export's owner may watch it (an
     * importer attaches to its own connection's exports only).
     */
    private static Future<Reply> exportWatch(Session s, Params p) {
        p.only("export_id", "ack");
        String id = p.string("export_id");
        boolean ack = !p.has("ack") || p.bool("ack");
        Export e = s.export(id);
        Future<Boolean> f = ack ? s.watch(e) : s.unwatch(e);
        return f.map(x -> Reply.of(new JsonObject().put("export_id", id).put("watching", ack)));
    }

    /** {@code export.quiesced}: this connection's answer to {@code export.revoking}. */
    private static Future<Reply> exportQuiesced(Session s, Params p) {
        p.only("export_id");
        String id = p.string("export_id");
        Export e = s.export(id);
        return s.service().devices().get(e.device()).quiesced(id, s)
                .map(x -> Reply.of(new JsonObject().put("export_id", id).put("quiesced", true)));
    }

    private static Future<Reply> eventsSubscribe(Session s, Params p) {
        if (p.has("fleet") && p.bool("fleet")) { // every node's events (cluster mode)
            if (s.service().fleet() == null) throw RpcException.invalidParams("fleet", "cluster mode is off on this daemon");
            // a scope filters by this daemon's connections and exports; the fleet stream has no such owner
            if (p.has("scope") || p.has("export_ids")) {
                throw RpcException.invalidParams(p.has("scope") ? "scope" : "export_ids",
                        "a fleet subscription takes no scope: it streams every event of every node");
            }
            return s.service().fleet().subscribe(s, p);
        }
        p.only("devices", "since", "fleet", "scope", "export_ids");
        List<String> visible = s.visibleDevices();
        Set<String> devices = new LinkedHashSet<>(p.has("devices") ? p.stringList("devices") : visible);
        for (String d : devices) if (!visible.contains(d)) throw RpcException.noSuchDevice(d);
        Map<String, Long> since = p.has("since") ? p.u64Map("since") : null;
        if (since != null) {
            for (Map.Entry<String, Long> e : since.entrySet()) {
                if (!devices.contains(e.getKey())) throw RpcException.noSuchDevice(e.getKey());
                if (e.getValue() < 0) e.setValue(Long.MAX_VALUE); // a u64 beyond any seq: nothing to replay
            }
        }
        Scope scope = SubscribeScope.of(s, p);
        s.reserveSubscription();
        Subscription sub;
        try {
            sub = s.service().hub().subscribe(Set.copyOf(devices), scope, since, s.service().policy().subscriberQueue(),
                    s.context(), new SubscriberSink(s));
        } catch (EventHub.UnknownExports e) {
            s.account().giveBackSubscription();
            throw SubscribeScope.unknown(e);
        }
        s.addSubscription(sub);
        JsonObject heads = new JsonObject();
        s.service().hub().heads(devices).forEach(heads::put);
        return ok(new JsonObject().put("subscription", sub.id()).put("heads", heads));
    }

    private static Future<Reply> eventsUnsubscribe(Session s, Params p) {
        p.only("subscription");
        String id = p.string("subscription");
        Subscription sub = s.removeSubscription(id);
        if (sub == null && s.service().fleet() != null && s.service().fleet().unsubscribe(s, id)) {
            return ok(new JsonObject().put("subscription", id).put("unsubscribed", true));
        }
        if (sub == null) {
            throw RpcException.invalidParams("subscription", "no such subscription on this connection: " + id);
        }
        sub.close();
        return ok(new JsonObject().put("subscription", id).put("unsubscribed", true));
    }

    // ---- importers: a client drives a peer-to-peer importer (simulated, or iommufd on Linux) ----------------

    private static Future<Reply> importerAttach(Session s, Params p) {
        p.only("export_id", "unmap_on_invalidate");
        String exportId = p.string("export_id");
        boolean autoUnmapAsked = !p.has("unmap_on_invalidate") || p.bool("unmap_on_invalidate");
        Export e = s.export(exportId);
        s.reserveImporter();
        String[] id = new String[1];
        Importer imp;
        try {
            // the callback runs in the kernel with the buffer's reservation lock held: unmap there (a well-behaved
            // importer does; on 7.1 the revoke waits for it), then tell the client on its own loop. An importer
            // the backend remaps after the restore (iommufd) keeps its mapping: the kernel already made it fault.
            imp = e.attachImporter(i -> {
                if (autoUnmapAsked && !i.remapsOnRestore()) while (i.mapped() > 0) i.unmap();
                notifyImporter(s, id, "importer.invalidated", exportId, i);
            }, i -> notifyImporter(s, id, "importer.remapped", exportId, i));
        } catch (Exception x) {
            s.giveBackImporterSlot();
            return Future.failedFuture(x);
        }
        id[0] = s.addImporter(imp);
        return ok(new JsonObject().put("importer_id", id[0]).put("export_id", exportId)
                .put("remaps_on_restore", imp.remapsOnRestore()));
    }

    /** An importer's notification, sent on the connection's own loop (callbacks run on the device's thread). */
    private static void notifyImporter(Session s, String[] id, String method, String exportId, Importer i) {
        JsonObject params = importerView(i).put("export_id", exportId);
        s.context().runOnContext(v -> {
            // not after the importer's detach, which the connection may have asked for since the callback ran
            if (id[0] != null && !s.isClosed() && s.holdsImporter(id[0], i)) {
                s.send(Wire.notification(method, params.put("importer_id", id[0])));
            }
        });
    }

    /** What {@code importer.get} and the importer notifications say of an importer now. */
    private static JsonObject importerView(Importer i) {
        JsonObject o = new JsonObject().put("mapped", i.mapped()).put("state", i.state().name().toLowerCase(java.util.Locale.ROOT))
                .put("invalidations", i.invalidations());
        if (i.remapsOnRestore()) o.put("remaps", i.remaps());
        if (i.iova() >= 0) o.put("iova", i.iova());
        return o;
    }

    private static Future<Reply> importerMap(Session s, Params p) {
        p.only("importer_id");
        String id = p.string("importer_id");
        Importer i = s.importer(id);
        try {
            i.map();
        } catch (KernelException x) {
            return Future.failedFuture(x);
        }
        return ok(importerView(i).put("importer_id", id));
    }

    private static Future<Reply> importerUnmap(Session s, Params p) {
        p.only("importer_id");
        String id = p.string("importer_id");
        Importer i = s.importer(id);
        if (i.mapped() == 0) throw RpcException.invalidParams("importer_id", "importer " + id + " has no mapping");
        try {
            i.unmap();
        } catch (IllegalStateException raced) {
            // an invalidate callback on the device's thread unmapped it after the check above
            throw RpcException.invalidParams("importer_id", "importer " + id + " has no mapping");
        }
        return ok(importerView(i).put("importer_id", id));
    }

    private static Future<Reply> importerGet(Session s, Params p) {
        p.only("importer_id");
        String id = p.string("importer_id");
        return ok(importerView(s.importer(id)).put("importer_id", id));
    }

    private static Future<Reply> importerDetach(Session s, Params p) {
        p.only("importer_id");
        String id = p.string("importer_id");
        s.removeImporter(id).close();
        return ok(new JsonObject().put("importer_id", id).put("detached", true));
    }
}

package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.events.EventHub;
import org.vfioexport.events.Scope;

import java.util.LinkedHashSet;

/**
 * The {@code scope} and {@code export_ids} params of {@code events.subscribe}: which export events the
 * subscription receives (device events are always included).
 *
 * <ul>
 *   <li>{@code "all"} (the default): every event of the devices;
 *   <li>{@code "own"}: the events of the exports this connection created, before or after subscribing. The
 *       connection, not the uid, is the unit: it owns exports (they are released with it, {@code export.get} of
 *       another connection's export is -32002), so "own" means the same here as everywhere else in the protocol;
 *   <li>{@code "exports"} with {@code export_ids}: the events of the listed exports, whoever owns them (a
 *       subscriber that sees the device sees all its exports' events with scope "all" anyway). Each must exist on
 *       a subscribed device when the subscription is made (-32002 otherwise), so a typo is an error, not a silent
 *       stream with nothing in it; the list is client-held memory in the daemon, bounded by
 *       {@link #MAX_EXPORT_IDS}.
 * </ul>
 */
final class SubscribeScope {
    /** At most this many ids in one list scope: a 1024-id list is about 20 KiB the daemon holds per subscription. */
    static final int MAX_EXPORT_IDS = 1024;

    private SubscribeScope() {}

    static Scope of(Session s, Params p) {
        String kind = p.has("scope") ? p.string("scope") : Scope.Kind.ALL.wire;
        boolean list = kind.equals(Scope.Kind.EXPORTS.wire);
        if (!list && p.has("export_ids")) {
            throw RpcException.invalidParams("export_ids", "field 'export_ids' goes with scope \"exports\" only (scope is \""
                    + kind + "\")");
        }
        if (kind.equals(Scope.Kind.ALL.wire)) return Scope.ALL;
        if (kind.equals(Scope.Kind.OWN.wire)) return Scope.own(s.id());
        if (!list) {
            throw RpcException.invalidParams("scope", "field 'scope' must be \"all\", \"own\" or \"exports\", got \"" + kind + "\"");
        }
        if (!p.has("export_ids")) {
            throw RpcException.invalidParams("export_ids", "missing field 'export_ids': scope \"exports\" needs the list of export ids");
        }
        JsonArray a = p.array("export_ids");
        if (a.size() > MAX_EXPORT_IDS) {
            throw new RpcException(ErrorCode.INVALID_PARAMS, "field 'export_ids' names " + a.size()
                    + " exports; at most " + MAX_EXPORT_IDS + " (max_scope_exports): use scope \"own\" or \"all\" for more",
                    new JsonObject().put("field", "export_ids").put("limit", "max_scope_exports").put("max", MAX_EXPORT_IDS));
        }
        return Scope.exports(new LinkedHashSet<>(p.stringList("export_ids")));
    }

    /** -32002 for the exports of a list scope no subscribed device knows: {@code data.export_id} is the first. */
    static RpcException unknown(EventHub.UnknownExports e) {
        String first = e.exportIds().getFirst();
        JsonObject data = new JsonObject().put("export_id", first).put("export_ids", new JsonArray(e.exportIds()));
        return new RpcException(ErrorCode.NO_SUCH_EXPORT, "no such export on the subscribed devices: "
                + String.join(", ", e.exportIds()) + " (scope \"exports\" names exports that exist when it subscribes)", data);
    }
}

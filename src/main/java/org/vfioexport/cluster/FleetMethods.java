package org.vfioexport.cluster;

import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.api.ErrorCode;
import org.vfioexport.api.MethodRegistry;
import org.vfioexport.api.Params;
import org.vfioexport.api.Reply;
import org.vfioexport.api.RpcException;
import org.vfioexport.api.RpcMethod;
import org.vfioexport.api.Session;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The {@code fleet.*} methods, registered only in cluster mode. The views are read-only and hold no fd: devices
 * and exports are described by their owning node on request (a node that does not answer in time is shown with
 * its last known state and {@code reachable: false}; a node that left, with state {@code gone}). Operations on a
 * device are forwarded to its node, which runs them as a local call and answers with the same result or error.
 */
final class FleetMethods {
    private FleetMethods() {}

    static void register(MethodRegistry r, FleetNode fleet) {
        r.register("fleet.nodes", guarded(fleet, FleetMethods::nodes));
        r.register("fleet.devices", guarded(fleet, FleetMethods::devices));
        r.register("fleet.exports", guarded(fleet, FleetMethods::exports));
        r.register("fleet.reset", guarded(fleet, FleetMethods::reset));
        r.register("fleet.set_memory", guarded(fleet, FleetMethods::setMemory));
    }

    private interface FleetCall {
        Future<Reply> call(FleetNode fleet, Session s, Params p);
    }

    private static RpcMethod guarded(FleetNode fleet, FleetCall m) {
        return (s, p) -> {
            fleet.checkAccess(s, "the fleet methods");
            return m.call(fleet, s, p);
        };
    }

    private static Future<Reply> nodes(FleetNode fleet, Session s, Params p) {
        p.only();
        JsonArray out = new JsonArray();
        for (FleetNode.Member m : sorted(fleet.members())) {
            JsonObject o = new JsonObject().put("node", m.node()).put("id", m.id()).put("self", m.self())
                    .put("state", m.alive() ? "up" : "gone").put("joined", m.joined().toString())
                    .put("devices", m.self() ? new JsonArray(s.service().devices().ids()) : m.deviceIds());
            if (m.left() != null) o.put("left", m.left().toString());
            out.add(o);
        }
        return Future.succeededFuture(Reply.now(new JsonObject().put("node", fleet.selfName()).put("nodes", out)));
    }

    /** Every node's description (the live ones asked now, in parallel), as {@code (member, description)} pairs. */
    private static Future<List<Described>> describeAll(FleetNode fleet, String onlyNode) {
        List<Future<Described>> all = new ArrayList<>();
        for (FleetNode.Member m : sorted(fleet.members())) {
            if (onlyNode != null && !onlyNode.equals(m.node())) continue;
            if (!m.alive()) {
                all.add(Future.succeededFuture(new Described(m, m.devices(), m.exports(), "gone", false)));
                continue;
            }
            all.add(fleet.describe(m.node()).map(d -> new Described(m, d.getJsonArray("devices"),
                    d.getJsonArray("exports"), null, true)).otherwise(t -> new Described(m, m.devices(), m.exports(),
                    null, false)));
        }
        return Future.all(all).map(cf -> {
            List<Described> out = new ArrayList<>();
            for (Future<Described> f : all) out.add(f.result());
            return out;
        });
    }

    private record Described(FleetNode.Member member, JsonArray devices, JsonArray exports, String forcedState,
                             boolean reachable) {
        JsonObject mark(JsonObject o) {
            JsonObject c = new JsonObject().put("node", member.node());
            c.mergeIn(o);
            if (forcedState != null) c.put("state", forcedState);
            if (!reachable) c.put("reachable", false);
            return c;
        }
    }

    private static Future<Reply> devices(FleetNode fleet, Session s, Params p) {
        p.only("node");
        String node = knownNode(fleet, p.optString("node"));
        return describeAll(fleet, node).map(list -> {
            JsonArray out = new JsonArray();
            for (Described d : list) for (int i = 0; i < d.devices().size(); i++) out.add(d.mark(d.devices().getJsonObject(i)));
            return Reply.of(new JsonObject().put("devices", out));
        });
    }

    private static Future<Reply> exports(FleetNode fleet, Session s, Params p) {
        p.only("node", "device");
        String node = knownNode(fleet, p.optString("node"));
        String device = p.optString("device");
        return describeAll(fleet, node).map(list -> {
            JsonArray out = new JsonArray();
            for (Described d : list) {
                for (int i = 0; i < d.exports().size(); i++) {
                    JsonObject e = d.exports().getJsonObject(i);
                    if (device == null || device.equals(e.getString("device"))) out.add(d.mark(e));
                }
            }
            return Reply.of(new JsonObject().put("exports", out));
        });
    }

    private static Future<Reply> reset(FleetNode fleet, Session s, Params p) {
        p.only("node", "device");
        String node = p.string("node"), device = p.string("device");
        checkLive(fleet, node, device);
        return fleet.request(node, new JsonObject().put("op", "reset").put("device", device))
                .map(r -> Reply.of(r.getJsonObject("result")));
    }

    private static Future<Reply> setMemory(FleetNode fleet, Session s, Params p) {
        p.only("node", "device", "enabled");
        String node = p.string("node"), device = p.string("device");
        boolean enabled = p.bool("enabled");
        checkLive(fleet, node, device);
        return fleet.request(node, new JsonObject().put("op", "set_memory").put("device", device).put("enabled", enabled))
                .map(r -> Reply.of(r.getJsonObject("result")));
    }

    /** -32001 for a node nobody knows (as for an unknown device), -32006 for one that left. */
    private static void checkLive(FleetNode fleet, String node, String device) {
        FleetNode.Member m = fleet.member(node);
        if (m == null) throw FleetNode.noSuchDevice(node, device);
        if (!m.alive()) {
            throw new RpcException(ErrorCode.DEVICE_UNAVAILABLE, "node " + node + " left the fleet at " + m.left(),
                    new JsonObject().put("node", node).put("device", device));
        }
    }

    private static String knownNode(FleetNode fleet, String node) {
        if (node != null && fleet.member(node) == null) {
            throw new RpcException(ErrorCode.NO_SUCH_DEVICE, "no such node: " + node, new JsonObject().put("node", node));
        }
        return node;
    }

    private static List<FleetNode.Member> sorted(List<FleetNode.Member> members) {
        List<FleetNode.Member> l = new ArrayList<>(members);
        l.sort(Comparator.comparing(FleetNode.Member::node).thenComparing(m -> m.alive() ? 0 : 1));
        return l;
    }
}

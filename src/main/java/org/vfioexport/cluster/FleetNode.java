package org.vfioexport.cluster;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.spi.cluster.NodeInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.api.ErrorCode;
import org.vfioexport.api.Fleet;
import org.vfioexport.api.Params;
import org.vfioexport.api.Policy;
import org.vfioexport.api.Reply;
import org.vfioexport.api.RpcException;
import org.vfioexport.api.Service;
import org.vfioexport.api.Session;
import org.vfioexport.api.Wire;
import org.vfioexport.device.DeviceHandle;
import org.vfioexport.device.DeviceSnapshot;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * This daemon as a node of the fleet. It answers, on its own event-bus address {@link #address(String)}, requests
 * about its devices (a description for the fleet views, a forwarded reset or memory toggle); it receives every
 * node's events on {@link #EVENTS} and hands them to this node's fleet subscriptions, checking each device's seq
 * so that a subscriber sees a gap-free sequence or an explicit {@code events.lost}; and it follows the membership
 * (the cluster manager's node list, polled every {@link #MEMBERSHIP_POLL_MS}): a node that appears is described
 * and announced as {@code node.joined}, a node that disappears is announced as {@code node.left} and its devices
 * and exports shown as gone. All of its state is touched on its own context, except the subscription table.
 */
public final class FleetNode implements Fleet {
    private static final Logger log = LoggerFactory.getLogger(FleetNode.class);
    public static final String EVENTS = "vfio-export.fleet.events";
    static final long MEMBERSHIP_POLL_MS = 250;
    /** Nodes that left are remembered (shown as gone) up to this many. */
    static final int MAX_GONE = 64;

    static String address(String node) {
        return "vfio-export.fleet.node." + node;
    }

    /** What this node knows of one member: its name, and its devices and exports as last described. */
    record Member(String id, String node, boolean self, boolean alive, Instant joined, Instant left, JsonArray devices,
                  JsonArray exports) {
        JsonArray deviceIds() {
            JsonArray ids = new JsonArray();
            for (int i = 0; i < devices.size(); i++) ids.add(devices.getJsonObject(i).getString("device"));
            return ids;
        }

        Member gone() {
            return new Member(id, node, self, false, joined, Instant.now(), devices, exports);
        }
    }

    private final Vertx vertx;
    private final ClusterManager manager;
    private final ClusterSettings settings;
    private final Service service;
    private final Policy access;
    private final ExportIndex exports;
    private final String selfId;
    private final Context context;
    private final DeliveryOptions requestOptions;

    /** By node id (one per incarnation); replaced whole, read from any loop. */
    private final Map<String, Member> members = new ConcurrentHashMap<>();
    private final Map<String, FleetSubscription> subscriptions = new ConcurrentHashMap<>();
    private final AtomicLong subscriptionIds = new AtomicLong();
    /** Connections with a fleet subscription, each hooked once to its writer's drain and its end. */
    private final Set<Session> hooked = ConcurrentHashMap.newKeySet();
    // on the context only
    private final Set<String> resolving = new HashSet<>();
    private final DeviceSeqs seqs = new DeviceSeqs();

    private FleetNode(Vertx vertx, ClusterManager manager, ClusterSettings settings, Service service, Policy access,
                      ExportIndex exports, Context context) {
        this.vertx = vertx;
        this.manager = manager;
        this.settings = settings;
        this.service = service;
        this.access = access;
        this.exports = exports;
        this.selfId = manager.getNodeId();
        this.context = context;
        this.requestOptions = new DeliveryOptions().setSendTimeout(settings.requestTimeoutMs());
    }

    /**
     * The half that must exist before the devices open: the publisher their events go through. The
     * {@link FleetNode} is made from it by {@link Outbound#start} once the service exists.
     */
    public static Outbound outbound(Vertx vertx, ClusterManager manager, ClusterSettings settings) {
        Context ctx = vertx.getOrCreateContext(); // called off the loops: a context of its own
        ExportIndex exports = new ExportIndex();
        return new Outbound(vertx, manager, settings, ctx, exports,
                new FleetPublisher(vertx.eventBus(), ctx, settings.node(), manager.getNodeId(), exports));
    }

    /** The event tap ({@link #publisher}) and what {@link #start} needs. */
    public record Outbound(Vertx vertx, ClusterManager manager, ClusterSettings settings, Context context,
                           ExportIndex exports, FleetPublisher publisher) {
        /** Refuses a duplicate node name, registers the node's consumers and methods, starts following members. */
        public Future<FleetNode> start(Service service, int daemonUid) {
            FleetNode n = new FleetNode(vertx, manager, settings, service, settings.accessPolicy(daemonUid), exports,
                    context);
            Promise<FleetNode> p = Promise.promise();
            context.runOnContext(v -> n.begin().map(x -> n).onComplete(p));
            return p.future();
        }
    }

    private Future<Void> begin() {
        return uniqueName().compose(v -> {
            MessageConsumer<JsonObject> requests = vertx.eventBus().consumer(address(settings.node()), this::answer);
            MessageConsumer<JsonObject> events = vertx.eventBus().consumer(EVENTS, this::receive);
            return Future.all(requests.completion(), events.completion());
        }).map(v -> {
            members.put(selfId, new Member(selfId, settings.node(), true, true, Instant.now(), null, new JsonArray(),
                    new JsonArray()));
            FleetMethods.register(service.methods(), this);
            service.fleet(this);
            pollMembers();
            vertx.setPeriodic(MEMBERSHIP_POLL_MS, t -> pollMembers());
            log.info("node {} ({}) in cluster {}, {} member(s)", settings.node(), selfId, settings.name(),
                    manager.getNodes().size());
            return null;
        });
    }

    /** A node name is one live daemon: another member of the same name refuses this one's start. */
    private Future<Void> uniqueName() {
        List<Future<NodeInfo>> infos = new ArrayList<>();
        for (String id : manager.getNodes()) {
            if (id.equals(selfId)) continue;
            Promise<NodeInfo> p = Promise.promise();
            manager.getNodeInfo(id, p);
            infos.add(p.future().recover(t -> Future.succeededFuture(null)));
        }
        return Future.all(infos).compose(cf -> {
            for (Future<NodeInfo> f : infos) {
                NodeInfo i = f.result();
                if (i != null && i.metadata() != null && settings.node().equals(i.metadata().getString("node"))) {
                    return Future.failedFuture("a node named " + settings.node() + " is already in cluster "
                            + settings.name() + " (a node that died leaves within " + settings.leaveBoundMs() + " ms)");
                }
            }
            return Future.succeededFuture();
        });
    }

    // ---- membership ------------------------------------------------------------------------------------------

    private void pollMembers() {
        Set<String> now = new HashSet<>(manager.getNodes());
        for (String id : now) {
            if (!members.containsKey(id) && resolving.add(id)) resolve(id);
        }
        for (Member m : List.copyOf(members.values())) {
            if (m.alive() && !m.self() && !now.contains(m.id())) left(m);
        }
    }

    /** A new member: its name from the node info Vert.x publishes, then its description (it may still be starting). */
    private void resolve(String id) {
        Promise<NodeInfo> info = Promise.promise();
        manager.getNodeInfo(id, info);
        info.future().compose(i -> {
            String node = i == null || i.metadata() == null ? null : i.metadata().getString("node");
            if (node == null) return Future.failedFuture("node " + id + " has no name yet");
            return describe(node).map(d -> new Member(id, node, false, true, Instant.now(), null,
                    d.getJsonArray("devices"), d.getJsonArray("exports")));
        }).onComplete(ar -> context.runOnContext(v -> {
            resolving.remove(id);
            if (ar.failed()) return; // asked again at the next poll while it is a member
            if (!manager.getNodes().contains(id)) return;
            Member m = ar.result();
            members.values().removeIf(o -> !o.alive() && o.node().equals(m.node()));
            members.put(id, m);
            broadcast(FleetEvent.membership("node.joined", m.node(), m.deviceIds()));
            log.info("node {} joined ({} device(s))", m.node(), m.devices().size());
        }));
    }

    private void left(Member m) {
        members.put(m.id(), m.gone());
        seqs.forget(m.id());
        broadcast(FleetEvent.membership("node.left", m.node(), m.deviceIds()));
        log.info("node {} left", m.node());
        List<Member> gone = members.values().stream().filter(x -> !x.alive())
                .sorted((a, b) -> a.left().compareTo(b.left())).toList();
        for (int i = 0; i < gone.size() - MAX_GONE; i++) members.remove(gone.get(i).id());
    }

    /** The members known, alive or gone. */
    List<Member> members() {
        return List.copyOf(members.values());
    }

    Member member(String node) {
        Member found = null;
        for (Member m : members.values()) {
            if (m.node().equals(node) && (found == null || m.alive())) found = m;
        }
        return found;
    }

    // ---- events ----------------------------------------------------------------------------------------------

    /** A batch of some node's events (this node's own included): checked per device, then to the subscribers. */
    private void receive(Message<JsonObject> msg) {
        JsonObject b = msg.body();
        String node = b.getString("node"), id = b.getString("id");
        JsonArray events = b.getJsonArray("events");
        List<FleetEvent> out = new ArrayList<>(events.size());
        for (int i = 0; i < events.size(); i++) out.addAll(seqs.accept(id, node, events.getJsonObject(i)));
        if (subscriptions.isEmpty()) return;
        for (FleetSubscription s : subscriptions.values()) for (FleetEvent e : out) s.offer(e);
    }

    private void broadcast(FleetEvent e) {
        for (FleetSubscription s : subscriptions.values()) s.offer(e);
    }

    @Override
    public Future<Reply> subscribe(Session s, Params p) {
        p.only("fleet");
        if (!p.bool("fleet")) throw RpcException.invalidParams("fleet", "fleet: false is a local subscription: leave it out");
        checkAccess(s, "events.subscribe {fleet: true}");
        s.reserveSubscription();
        String id = "fleet-sub-" + subscriptionIds.incrementAndGet();
        FleetSubscription sub = new FleetSubscription(id, service.policy().subscriberQueue(), s, () -> {
            if (subscriptions.remove(id) != null) s.giveBackSubscriptionSlot();
        });
        subscriptions.put(id, sub);
        if (hooked.add(s)) { // once per connection, however often it subscribes: its writer's drain, its end
            s.writer().onDrain(() -> forEachOf(s, FleetSubscription::resume));
            s.onEnd(() -> {
                hooked.remove(s);
                forEachOf(s, FleetSubscription::close);
            });
        }
        JsonArray nodes = new JsonArray();
        for (Member m : members.values()) if (m.alive()) nodes.add(m.node());
        return Future.succeededFuture(Reply.now(new JsonObject().put("subscription", id).put("fleet", true)
                .put("nodes", nodes)));
    }

    private void forEachOf(Session s, java.util.function.Consumer<FleetSubscription> action) {
        for (FleetSubscription f : List.copyOf(subscriptions.values())) if (f.session() == s) action.accept(f);
    }

    @Override
    public boolean unsubscribe(Session s, String id) {
        FleetSubscription sub = subscriptions.get(id);
        if (sub == null || sub.session() != s) return false;
        sub.close();
        return true;
    }

    // ---- requests between nodes ------------------------------------------------------------------------------

    /** What another node asks of this one: a description, or an operation on one of its devices. */
    private void answer(Message<JsonObject> msg) {
        JsonObject b = msg.body();
        String op = b.getString("op", "");
        if (op.equals("describe")) {
            describeSelf().onComplete(ar -> {
                if (ar.succeeded()) msg.reply(ar.result());
                else msg.reply(error(RpcException.from(ar.cause())));
            });
            return;
        }
        String device = b.getString("device");
        DeviceHandle h = device == null ? null : service.devices().get(device);
        if (service.isShuttingDown()) {
            msg.reply(error(RpcException.shuttingDown()));
        } else if (h == null) {
            msg.reply(error(noSuchDevice(settings.node(), device)));
        } else if (op.equals("reset")) {
            h.reset().onSuccess(r -> service.metrics().reset(r.device(), r.durationMicros())).onComplete(ar -> msg.reply(
                    ar.failed() ? error(RpcException.from(ar.cause())) : new JsonObject().put("result", new JsonObject()
                            .put("node", settings.node()).put("device", ar.result().device())
                            .put("revoked", ar.result().revoked()).put("restored", ar.result().restored())
                            .put("duration_us", ar.result().durationMicros()))));
        } else if (op.equals("set_memory")) {
            boolean enabled = b.getBoolean("enabled");
            long start = System.nanoTime();
            h.setMemory(enabled).onSuccess(r -> service.metrics().memoryToggle(r.device(), enabled, start))
                    .onComplete(ar -> msg.reply(ar.failed() ? error(RpcException.from(ar.cause())) : new JsonObject()
                            .put("result", new JsonObject().put("node", settings.node()).put("device", ar.result().device())
                                    .put("memory_enabled", ar.result().memoryEnabled())
                                    .put("revoked", ar.result().revoked()).put("restored", ar.result().restored()))));
        } else {
            msg.reply(error(RpcException.invalidParams("op", "unknown fleet operation " + op)));
        }
    }

    private Future<JsonObject> describeSelf() {
        List<Future<DeviceSnapshot>> all = new ArrayList<>();
        for (String id : service.devices().ids()) all.add(service.devices().get(id).describe());
        return Future.all(all).map(cf -> {
            JsonArray devices = new JsonArray();
            for (Future<DeviceSnapshot> f : all) devices.add(Wire.device(f.result()));
            return new JsonObject().put("node", settings.node()).put("id", selfId).put("devices", devices)
                    .put("exports", exports.toJson());
        });
    }

    /** {@code node}'s description, remembered as its last known state (what the views show once it is gone). */
    Future<JsonObject> describe(String node) {
        return request(node, new JsonObject().put("op", "describe")).onSuccess(d -> context.runOnContext(v -> {
            Member m = member(node);
            if (m != null && m.alive() && m.id().equals(d.getString("id"))) {
                members.put(m.id(), new Member(m.id(), m.node(), m.self(), true, m.joined(), null,
                        d.getJsonArray("devices"), d.getJsonArray("exports")));
            }
        }));
    }

    /**
     * Asks {@code node} and returns its answer's body, or fails with the protocol error it answered (the same as
     * a local call's) or -32006 when it cannot be reached in time.
     */
    Future<JsonObject> request(String node, JsonObject body) {
        return vertx.eventBus().<JsonObject>request(address(node), body, requestOptions).transform(ar -> {
            if (ar.failed()) {
                return Future.failedFuture(new RpcException(ErrorCode.DEVICE_UNAVAILABLE, "node " + node
                        + " did not answer: " + ar.cause().getMessage(), new JsonObject().put("node", node)
                        .put("device", body.getString("device"))));
            }
            JsonObject r = ar.result().body();
            JsonObject err = r.getJsonObject("error");
            if (err != null) {
                ErrorCode code = ErrorCode.of(err.getInteger("code"));
                return Future.failedFuture(new RpcException(code == null ? ErrorCode.INTERNAL_ERROR : code,
                        err.getString("message"), err.getJsonObject("data")));
            }
            return Future.succeededFuture(r);
        });
    }

    private static JsonObject error(RpcException e) {
        return new JsonObject().put("error", e.toJson());
    }

    static RpcException noSuchDevice(String node, String device) {
        return new RpcException(ErrorCode.NO_SUCH_DEVICE, "no such device on node " + node + ": " + device,
                new JsonObject().put("node", node).put("device", device));
    }

    // ---- access ----------------------------------------------------------------------------------------------

    void checkAccess(Session s, String what) {
        if (!access.allows(s.peer())) {
            throw RpcException.denied("permission denied: " + what + " needs the fleet permission (cluster.allow_uids, "
                    + "cluster.allow_gids, cluster.allow_daemon_user); uid " + s.peer().uid() + " has not got it");
        }
    }

    ClusterSettings settings() {
        return settings;
    }

    String selfName() {
        return settings.node();
    }

}

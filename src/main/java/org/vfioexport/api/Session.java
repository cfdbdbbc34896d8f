package org.vfioexport.api;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetSocket;
import org.vfioexport.device.DeviceHandle;
import org.vfioexport.device.Export;
import org.vfioexport.device.ExportState;
import org.vfioexport.events.Cause;
import org.vfioexport.events.Subscription;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client connection: its credentials, its exports, its subscriptions, and the JSON-RPC dispatch of its lines.
 * Everything here runs on the connection's event loop; results of device calls are brought back to it with
 * {@link #here(Future)} before they touch session state or the writer.
 */
public final class Session {
    private static final AtomicLong IDS = new AtomicLong();

    private final Service service;
    private final Vertx vertx;
    private final Context context;
    private final NetSocket socket;
    private final FdWriter writer;
    private final Posix.PeerCred peer;
    private final boolean authorised;
    private final String id = "conn-" + IDS.incrementAndGet();
    private final Map<String, Export> exports = new LinkedHashMap<>();
    private final Map<String, Subscription> subscriptions = new LinkedHashMap<>();
    private final Map<String, Future<?>> tails = new java.util.HashMap<>();
    private int exportsInFlight;
    private boolean closed;

    Session(Service service, Vertx vertx, NetSocket socket, FdWriter writer, Posix.PeerCred peer) {
        this.service = service;
        this.vertx = vertx;
        this.context = vertx.getOrCreateContext();
        this.socket = socket;
        this.writer = writer;
        this.peer = peer;
        this.authorised = service.policy().allows(peer);
        // events paused because the client reads slowly go on once the writer has drained
        writer.onDrain(() -> List.copyOf(subscriptions.values()).forEach(Subscription::resume));
    }

    public String id() {
        return id;
    }

    public Service service() {
        return service;
    }

    public Posix.PeerCred peer() {
        return peer;
    }

    public Context context() {
        return context;
    }

    public FdWriter writer() {
        return writer;
    }

    public boolean isClosed() {
        return closed;
    }

    // ---- device visibility ----------------------------------------------------------------------------------

    /** The devices this client may see, in configuration order. */
    public List<String> visibleDevices() {
        return authorised ? service.devices().ids() : List.of();
    }

    /** The handle of a device this client may see, or -32001. */
    public DeviceHandle device(String deviceId) {
        DeviceHandle h = authorised ? service.devices().get(deviceId) : null;
        if (h == null) throw RpcException.noSuchDevice(deviceId);
        return h;
    }

    // ---- exports ---------------------------------------------------------------------------------------------

    /** This client's export, or -32002. Exports the device released on its own (device close) are forgotten. */
    public Export export(String exportId) {
        Export e = exports.get(exportId);
        if (e == null || e.state() == ExportState.RELEASED) {
            if (e != null) exports.remove(exportId);
            throw RpcException.noSuchExport(exportId);
        }
        return e;
    }

    public List<Export> exports() {
        exports.values().removeIf(e -> e.state() == ExportState.RELEASED);
        return List.copyOf(exports.values());
    }

    /** Reserves room for one more export under the quota, or -32005. */
    public void reserveExport() {
        int limit = service.policy().maxExportsPerClient();
        if (exports().size() + exportsInFlight >= limit) {
            throw RpcException.quota(limit, "quota exceeded: this client already holds " + limit
                    + " exports (max_exports_per_client); release some first");
        }
        exportsInFlight++;
    }

    /**
     * Takes ownership of a new export (on the connection's loop). If the client went away while the export was
     * being made, it is released at once with cause session-end and false is returned.
     */
    public boolean adopt(Export e) {
        exportsInFlight--;
        if (closed) {
            release(e, Cause.SESSION_END);
            return false;
        }
        exports.put(e.id(), e);
        return true;
    }

    public void unreserveExport() {
        exportsInFlight--;
    }

    public Future<Export> release(Export e, Cause cause) {
        exports.remove(e.id());
        DeviceHandle h = service.devices().get(e.device());
        if (h == null) return Future.failedFuture(RpcException.noSuchExport(e.id()));
        return h.release(e, cause);
    }

    // ---- subscriptions ---------------------------------------------------------------------------------------

    public void addSubscription(Subscription s) {
        subscriptions.put(s.id(), s);
    }

    public Subscription removeSubscription(String subscriptionId) {
        return subscriptions.remove(subscriptionId);
    }

    // ---- lifecycle -------------------------------------------------------------------------------------------

    void greet() {
        JsonObject hello = new JsonObject().put("server", Service.NAME).put("version", Service.VERSION)
                .put("protocol", Service.PROTOCOL).put("backend", service.backend()).put("pid", service.pid())
                .put("capabilities", new JsonArray().add("fd-passing").add("events").add("replay").add("batch"));
        send(Wire.notification("hello", hello));
    }

    /**
     * The connection closed: every export is released (cause session-end), right here on this thread so that a
     * reset starting now already sees the releases under way; subscriptions end; queued fds are closed.
     */
    void end() {
        if (closed) return;
        closed = true;
        for (Export e : List.copyOf(exports.values())) {
            release(e, Cause.SESSION_END).onFailure(t -> { /* already released by the device (close, shutdown) */ });
        }
        exports.clear();
        for (Subscription s : subscriptions.values()) s.close();
        subscriptions.clear();
        writer.close();
        service.sessions().remove(this);
    }

    /** Closes the connection after what was already written (shutdown); the session then ends. */
    public Future<Void> endGracefully() {
        return socket.end().otherwiseEmpty();
    }

    /** Writes one JSON message as a line. */
    public void send(JsonObject message) {
        writer.write(line(message));
    }

    private static Buffer line(Object json) {
        return Json.encodeToBuffer(json).appendByte((byte) '\n');
    }

    /**
     * {@code f}'s outcome, delivered by a fresh task on this connection's loop. Never inline, even when {@code f}
     * is complete already: a device may have completed it a moment ago, after queueing its events to this
     * connection's subscriptions with runOnContext, and those must be written first (guarantee 4).
     */
    public <T> Future<T> here(Future<T> f) {
        Promise<T> p = Promise.promise();
        // Always a fresh task on the connection's loop, even when the listener already runs on its thread (a
        // device whose verticle shares the loop thread completes inline): event deliveries the device queued with
        // runOnContext before completing must run first (guarantee 4: events before the response).
        f.onComplete(ar -> context.runOnContext(v -> p.handle(ar)));
        return p.future();
    }

    // ---- JSON-RPC dispatch -----------------------------------------------------------------------------------

    /** The line limit was exceeded: -32600 with id null, then close. */
    void lineTooLong() {
        send(Wire.error(null, new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: line longer than "
                + service.maxLineBytes() + " bytes (max_line_bytes); closing the connection", null)));
        socket.end();
    }

    void handleLine(Buffer line) {
        if (closed) return;
        if (isBlank(line)) return;
        Object message;
        try {
            message = Json.decodeValue(line);
        } catch (DecodeException e) {
            send(Wire.error(null, new RpcException(ErrorCode.PARSE_ERROR,
                    "parse error: the line is not JSON (" + firstLine(e.getMessage()) + ")", null)));
            return;
        }
        if (message instanceof JsonArray batch) {
            handleBatch(batch);
        } else {
            Future<Outcome> f = handleOne(message);
            f.onComplete(ar -> {
                Outcome o = ar.result();
                if (o.response == null) return; // a notification
                if (o.export == null) send(o.response);
                else sendWithExports(o.response, List.of(o));
            });
        }
    }

    private void handleBatch(JsonArray batch) {
        if (batch.isEmpty()) {
            send(Wire.error(null, new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: empty batch", null)));
            return;
        }
        List<Future<Outcome>> all = new ArrayList<>(batch.size());
        for (int i = 0; i < batch.size(); i++) all.add(handleOne(batch.getValue(i)));
        Future.join(all).onComplete(ar -> {
            JsonArray responses = new JsonArray();
            List<Outcome> withFds = new ArrayList<>();
            for (Future<Outcome> f : all) {
                Outcome o = f.result();
                if (o.response == null) continue;
                responses.add(o.response);
                if (o.export != null) withFds.add(o);
            }
            if (responses.isEmpty()) return; // all notifications: no response at all
            if (withFds.isEmpty()) writer.write(line(responses));
            else sendWithExports(responses, withFds);
        });
    }

    /** A response and its JSON-RPC envelope; {@code export} set when the line must carry its fd. */
    private record Outcome(JsonObject response, Export export) {}

    /** Handles one request; the future always succeeds (errors become error responses) on this loop. */
    private Future<Outcome> handleOne(Object message) {
        if (!(message instanceof JsonObject req)) {
            return Future.succeededFuture(new Outcome(Wire.error(null, invalid("a request must be a JSON object, got "
                    + Params.typeName(message))), null));
        }
        boolean hasId = req.containsKey("id");
        Object id = req.getValue("id");
        boolean idOk = id instanceof String || id instanceof Integer || id instanceof Long || id instanceof BigInteger;
        Object replyId = idOk ? id : null;
        String problem = null;
        if (!"2.0".equals(req.getValue("jsonrpc"))) problem = "\"jsonrpc\" must be \"2.0\"";
        else if (!(req.getValue("method") instanceof String)) problem = "\"method\" must be a string";
        else if (hasId && !idOk) problem = "\"id\" must be a string or an integer";
        else {
            for (String k : req.fieldNames()) {
                if (!k.equals("jsonrpc") && !k.equals("id") && !k.equals("method") && !k.equals("params")) {
                    problem = "unknown member \"" + k + "\"";
                    break;
                }
            }
        }
        if (problem != null) return Future.succeededFuture(new Outcome(Wire.error(replyId, invalid(problem)), null));

        String name = req.getString("method");
        String device = deviceOf(req.getValue("params"));
        Future<Reply> reply = inDeviceOrder(device, invoke(name, req.getValue("params")));
        return reply.transform(ar -> {
            if (ar.succeeded()) {
                Reply r = ar.result();
                if (!hasId) { // a notification: performed (an export stays the session's), never answered
                    return Future.succeededFuture(new Outcome(null, null));
                }
                return Future.succeededFuture(new Outcome(Wire.result(id, r.result()), r.export()));
            }
            RpcException e = RpcException.from(ar.cause());
            if (e.code() == ErrorCode.INTERNAL_ERROR) {
                System.err.println("vfio-exportd: internal error in " + name + ": " + ar.cause());
                ar.cause().printStackTrace();
            }
            return Future.succeededFuture(new Outcome(hasId ? Wire.error(id, e) : null, null));
        });
    }

    /**
     * The device a request is about, for response ordering: its {@code device} param, or the device of the
     * export it names. Null when it names neither (or names them wrongly: then it fails on its own anyway).
     */
    private String deviceOf(Object params) {
        if (!(params instanceof JsonObject p)) return null;
        if (p.getValue("device") instanceof String d) return d;
        if (p.getValue("export_id") instanceof String x) {
            Export e = exports.get(x);
            return e == null ? null : e.device();
        }
        return null;
    }

    /**
     * Responses about one device leave in request order (protocol: pipelined requests), whatever order the device
     * completes them in (a snapshot is immediate, an export waits for the kernel): each outcome waits for the
     * previous one of its device.
     */
    private Future<Reply> inDeviceOrder(String device, Future<Reply> reply) {
        if (device == null) return reply;
        Future<?> previous = tails.get(device);
        Future<Reply> ordered = previous == null || previous.isComplete() ? reply : previous.transform(x -> reply);
        tails.put(device, ordered);
        ordered.onComplete(ar -> tails.remove(device, ordered));
        return ordered;
    }

    private Future<Reply> invoke(String name, Object params) {
        RpcMethod m = service.methods().get(name);
        if (m == null) {
            return Future.failedFuture(new RpcException(ErrorCode.METHOD_NOT_FOUND, "method not found: " + name
                    + " (rpc.methods lists them)", new JsonObject().put("method", name)));
        }
        if (service.isShuttingDown()) return Future.failedFuture(RpcException.shuttingDown());
        if (!authorised && !service.methods().isPublic(name)) {
            return Future.failedFuture(RpcException.denied("permission denied: uid " + peer.uid() + " gid "
                    + peer.gid() + " is not allowed by the policy (allow_uids, allow_gids)"));
        }
        try {
            Future<Reply> f = m.call(this, Params.of(params));
            // a result computed right here on the loop (no device involved) goes out at once: the response to
            // events.subscribe thus precedes the events it replays
            if (f.succeeded() && f.result().immediate()) return f;
            return here(f);
        } catch (RpcException e) {
            return Future.failedFuture(e);
        } catch (RuntimeException e) {
            return Future.failedFuture(e);
        }
    }

    /**
     * Sends a response line that carries the fds of {@code withFds}, in that order, each result naming its
     * {@code fd_index}. Each fd is a duplicate of the export's own reference, closed once the line went out.
     */
    private void sendWithExports(Object responses, List<Outcome> withFds) {
        int[] fds = new int[withFds.size()];
        int n = 0;
        for (Outcome o : withFds) {
            int fd = duplicate(o.export);
            if (fd >= 0) {
                fds[n] = fd;
                o.response.getJsonObject("result").put("fd_index", n);
                n++;
            } else {
                // the export went away between its creation and its response (device closed, shutdown)
                o.response.remove("result");
                o.response.put("error", new RpcException(ErrorCode.DEVICE_UNAVAILABLE, "export " + o.export.id()
                        + " was released before it could be sent", new JsonObject().put("device", o.export.device())).toJson());
                exports.remove(o.export.id());
            }
        }
        int[] sent = java.util.Arrays.copyOf(fds, n);
        Buffer bytes = line(responses);
        if (sent.length == 0) {
            writer.write(bytes);
            return;
        }
        writer.writeWithFds(bytes, sent, () -> {
            for (int fd : sent) closeQuietly(fd);
        });
    }

    /**
     * A duplicate of the export's own fd for sending, or -1 if the export is already being released (its fd is
     * closed or about to be). The device closes its fd only at release, which this connection's loop has not
     * started for its own exports; a release by the device itself (close, shutdown) is what the check catches.
     */
    private static int duplicate(Export e) {
        if (e.isDying() || e.state() == ExportState.RELEASED) return -1;
        try {
            return Posix.dup(e.fd());
        } catch (PosixException x) {
            return -1;
        }
    }

    private static void closeQuietly(int fd) {
        try {
            Posix.close(fd);
        } catch (PosixException e) {
            System.err.println("vfio-exportd: close(" + fd + "): " + e.getMessage());
        }
    }

    private static RpcException invalid(String why) {
        return new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: " + why, null);
    }

    private static boolean isBlank(Buffer b) {
        for (int i = 0; i < b.length(); i++) {
            byte c = b.getByte(i);
            if (c != ' ' && c != '\t' && c != '\r') return false;
        }
        return true;
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }
}

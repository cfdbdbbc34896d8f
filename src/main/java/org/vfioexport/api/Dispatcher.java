package org.vfioexport.api;

import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.device.Export;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.vfioexport.api.Session.line;

/**
 * JSON-RPC 2.0 over one connection's lines: parsing, requests, notifications and batches, the method call, the
 * order of responses, and the lines that carry fds. Runs on the connection's event loop.
 */
final class Dispatcher {
    private final Session session;
    private final FdWriter writer;
    /** Per device, the last response not yet written: the next one about the device waits for it. */
    private final Map<String, Future<?>> tails = new HashMap<>();
    /** Methods whose caller must see the operation's events before the response (guarantee 4). */
    private static final java.util.Set<String> EVENTS_FIRST = java.util.Set.of("device.reset", "device.set_memory");

    Dispatcher(Session session) {
        this.session = session;
        this.writer = session.writer();
    }

    /** The line limit was exceeded: -32600 with id null, then close. */
    void lineTooLong() {
        session.send(Wire.error(null, new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: line longer than "
                + session.service().maxLineBytes() + " bytes (max_line_bytes); closing the connection", null)));
        session.socket().end();
    }

    void handleLine(Buffer line) {
        if (session.isClosed()) return;
        if (isBlank(line)) return;
        Object message;
        try {
            message = JsonLineDecoder.decode(line); // strict: UTF-8, RFC 8259, no duplicate keys
        } catch (RpcException e) {
            session.send(Wire.error(null, e));
            return;
        }
        if (message instanceof JsonArray batch) {
            handleBatch(batch);
        } else {
            Future<Outcome> f = handleOne(message);
            f.onComplete(ar -> {
                Outcome o = ar.result();
                if (o.response == null) return; // a notification
                if (o.export == null) session.send(o.response);
                else sendWithExports(o.response, List.of(o));
            });
        }
    }

    private void handleBatch(JsonArray batch) {
        if (batch.isEmpty()) {
            session.send(Wire.error(null, new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: empty batch", null)));
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
        Future<Reply> reply = invoke(name, req.getValue("params"));
        if (EVENTS_FIRST.contains(name)) {
            Future<Reply> done = reply;
            reply = done.transform(ar -> session.subscriptionsFlushed().transform(x -> done));
        }
        reply = inDeviceOrder(device, reply);
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
            Export e = session.ownedExport(x);
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
        RpcMethod m = session.service().methods().get(name);
        if (m == null) {
            return Future.failedFuture(new RpcException(ErrorCode.METHOD_NOT_FOUND, "method not found: " + name
                    + " (rpc.methods lists them)", new JsonObject().put("method", name)));
        }
        if (session.service().isShuttingDown()) return Future.failedFuture(RpcException.shuttingDown());
        if (!session.isAuthorised() && !session.service().methods().isPublic(name)) {
            return Future.failedFuture(RpcException.denied("permission denied: uid " + session.peer().uid() + " gid "
                    + session.peer().gid() + " is not allowed by the policy (allow_uids, allow_gids)"));
        }
        try {
            Future<Reply> f = m.call(session, Params.of(params));
            // a result computed right here on the loop (no device involved) goes out at once: the response to
            // events.subscribe thus precedes the events it replays
            if (f.succeeded() && f.result().immediate()) return f;
            return session.here(f);
        } catch (RuntimeException e) { // a shape error (RpcException), or a bug: -32603
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
                session.forget(o.export);
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

    /** A duplicate of the export's own fd for sending, or -1 if the export is already being released. */
    private static int duplicate(Export e) {
        return e.dupFd();
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
}

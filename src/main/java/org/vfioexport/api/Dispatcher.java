package org.vfioexport.api;

import io.vertx.core.AsyncResult;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.device.Export;
import org.vfioexport.events.Cause;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.kernel.KernelException;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.vfioexport.api.Session.line;

/**
 * JSON-RPC 2.0 over one connection's lines: parsing, requests, notifications and batches, the method call, the
 * order of responses, the lines that carry fds, and the pace of input. Runs on the connection's event loop.
 *
 * <p>Input is paced by output: the connection stops being read while its writer holds more than the client
 * reads ({@link FdWriter#isFull()}) or while {@code max_requests_in_flight_per_client} requests are unanswered,
 * and is read again once both have room. A client that sends without reading thus holds at most one read's
 * worth of input and a bounded amount of output in the daemon.
 */
final class Dispatcher {
    private static final Logger log = LoggerFactory.getLogger(Dispatcher.class);
    /** Methods whose caller must see the operation's events before the response (guarantee 4). */
    private static final Set<String> EVENTS_FIRST = Set.of("device.reset", "device.set_memory");

    /** Pauses and resumes the reading of the connection (the socket and the line framer). */
    interface Input {
        void pause();

        void resume();
    }

    private final Session session;
    private final FdWriter writer;
    private final Policy.Limits limits;
    private final Input input;
    /** Per device, the last response not yet written: the next one about the device waits for it. */
    private final Map<String, Future<?>> tails = new HashMap<>();
    private int requestsInFlight;
    private boolean inputPaused;
    /** Set once the connection is to be closed after what was written: later lines are not handled. */
    private boolean ending;

    Dispatcher(Session session, Input input) {
        this.session = session;
        this.writer = session.writer();
        this.limits = session.service().policy().limits();
        this.input = input;
        writer.onDrain(this::paceInput);
    }

    /** The line limit was exceeded: -32600 with id null, then close. */
    void lineTooLong() {
        session.service().metrics().refused(ErrorCode.INVALID_REQUEST.code);
        session.send(Wire.error(null, new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: line longer than "
                + session.service().maxLineBytes() + " bytes (max_line_bytes); closing the connection", null)));
        endConnection();
    }

    /** Stops handling input and closes the connection once everything written so far went out. */
    void endConnection() {
        if (ending) return;
        ending = true;
        input.pause();
        writer.afterWritten(() -> session.socket().end());
    }

    boolean isInputPaused() {
        return inputPaused || ending;
    }

    /** Lines handled so far still get their answers; no further line is read (shutdown). */
    void stopReading() {
        ending = true;
        input.pause();
    }

    void handleLine(Buffer line) {
        if (session.isClosed() || ending) return;
        if (isBlank(line)) return;
        Object message;
        try {
            message = JsonLineDecoder.decode(line); // strict: UTF-8, RFC 8259, no duplicate keys
        } catch (RpcException e) {
            session.service().metrics().refused(e.code().code);
            session.send(Wire.error(null, e));
            paceInput();
            return;
        }
        if (message instanceof JsonArray batch) {
            handleBatch(batch);
        } else {
            requestsInFlight++;
            handleOne(message).onComplete(ar -> {
                requestsInFlight--;
                Outcome o = ar.result();
                if (o.response != null) {
                    if (o.export == null) session.send(o.response);
                    else sendWithExports(o.response, List.of(o));
                }
                afterResponse(List.of(o));
            });
        }
        paceInput();
    }

    private void handleBatch(JsonArray batch) {
        RpcException refused = refuseBatch(batch);
        if (refused != null) {
            session.service().metrics().refused(refused.code().code);
            session.send(Wire.error(null, refused));
            return;
        }
        List<Future<Outcome>> all = new ArrayList<>(batch.size());
        requestsInFlight += batch.size();
        for (int i = 0; i < batch.size(); i++) all.add(handleOne(batch.getValue(i)));
        Future.join(all).onComplete(ar -> {
            requestsInFlight -= batch.size();
            JsonArray responses = new JsonArray();
            List<Outcome> withFds = new ArrayList<>();
            List<Outcome> outcomes = new ArrayList<>(all.size());
            for (Future<Outcome> f : all) {
                Outcome o = f.result();
                outcomes.add(o);
                if (o.response == null) continue;
                responses.add(o.response);
                if (o.export != null) withFds.add(o);
            }
            if (!responses.isEmpty()) {  // all notifications: no response at all
                if (withFds.isEmpty()) writer.write(line(responses));
                else sendWithExports(responses, withFds);
            }
            afterResponse(outcomes);
        });
    }

    /**
     * A batch refused whole, before any of it runs: an empty one, one longer than {@code max_batch} (what one
     * line may make the daemon produce is bounded), or one whose fds could not ride on one {@code sendmsg}
     * (more than SCM_MAX_FD {@code export.create}).
     */
    private RpcException refuseBatch(JsonArray batch) {
        if (batch.isEmpty()) return new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: empty batch", null);
        if (batch.size() > limits.maxBatch()) {
            return new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: a batch of " + batch.size()
                    + " requests; at most " + limits.maxBatch() + " (max_batch)",
                    new JsonObject().put("limit", "max_batch").put("max", limits.maxBatch()));
        }
        int exports = 0;
        for (int i = 0; i < batch.size(); i++) {
            if (batch.getValue(i) instanceof JsonObject r && "export.create".equals(r.getValue("method"))) exports++;
        }
        if (exports > Policy.SCM_MAX_FD) {
            return new RpcException(ErrorCode.INVALID_REQUEST, "invalid request: a batch with " + exports
                    + " export.create; its response would carry more fds than one sendmsg can (SCM_MAX_FD, "
                    + Policy.SCM_MAX_FD + "); split it", new JsonObject().put("limit", "SCM_MAX_FD").put("max", Policy.SCM_MAX_FD));
        }
        return null;
    }

    /** After a line's responses went to the writer: a client the policy refuses is not served further. */
    private void afterResponse(List<Outcome> outcomes) {
        for (Outcome o : outcomes) {
            if (o.denied) {
                endConnection();
                return;
            }
        }
        paceInput();
    }

    /** Pauses reading while output or requests in flight are over their bounds; resumes once both have room. */
    private void paceInput() {
        if (ending || session.isClosed()) return;
        boolean over = writer.isFull() || requestsInFlight >= limits.maxRequestsInFlightPerClient();
        if (over && !inputPaused) {
            inputPaused = true;
            input.pause();
        } else if (!over && inputPaused) {
            inputPaused = false;
            input.resume();
        }
    }

    /**
     * A response and its JSON-RPC envelope; {@code export} set when the line must carry its fd; {@code denied}
     * when the policy refused the request.
     */
    private record Outcome(JsonObject response, Export export, boolean denied) {
        Outcome(JsonObject response, Export export) {
            this(response, export, false);
        }
    }

    /** Handles one request; the future always succeeds (errors become error responses) on this loop. */
    private Future<Outcome> handleOne(Object message) {
        if (!(message instanceof JsonObject req)) {
            session.service().metrics().refused(ErrorCode.INVALID_REQUEST.code);
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
        if (problem != null) {
            session.service().metrics().refused(ErrorCode.INVALID_REQUEST.code);
            return Future.succeededFuture(new Outcome(Wire.error(replyId, invalid(problem)), null));
        }

        String name = req.getString("method");
        long start = System.nanoTime();
        String device = deviceOf(req.getValue("params"));
        Future<Reply> reply = invoke(name, req.getValue("params"));
        if (EVENTS_FIRST.contains(name)) {
            Future<Reply> done = reply;
            reply = done.transform(ar -> session.subscriptionsFlushed().transform(x -> done));
        }
        reply = inDeviceOrder(device, reply);
        // whatever fails below, even a bug, the request gets its one answer: a lost answer would stall the client
        return reply.transform(ar -> {
                    measure(name, start, ar);
                    return outcome(name, id, hasId, ar);
                })
                .otherwise(t -> new Outcome(hasId ? Wire.error(id, RpcException.from(t)) : null, null));
    }

    /** A request's outcome: its result, or its error (a bug is -32603, logged). */
    private Future<Outcome> outcome(String name, Object id, boolean hasId, AsyncResult<Reply> ar) {
        if (ar.succeeded()) {
            Reply r = ar.result();
            if (!hasId) return Future.succeededFuture(new Outcome(null, null)); // a notification: never answered
            return Future.succeededFuture(new Outcome(Wire.result(id, r.result()), r.export()));
        }
        RpcException e = RpcException.from(ar.cause());
        if (e.code() == ErrorCode.INTERNAL_ERROR) {
            log.error("internal error in {}", name, ar.cause()); // a bug: the stack trace says where
        }
        return Future.succeededFuture(new Outcome(hasId ? Wire.error(id, e) : null, null,
                e.code() == ErrorCode.PERMISSION_DENIED && !session.isAuthorised())); // a missing fleet permission does not close
    }

    /** Latency by method, and the error code of a failed request; an unregistered method name counts as other. */
    private void measure(String name, long start, AsyncResult<Reply> ar) {
        String method = session.service().methods().get(name) != null ? name : "other";
        session.service().metrics().request(method, start, ar.succeeded() ? null : RpcException.from(ar.cause()).code().code);
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
            Audited.refused(session, name);
            return Future.failedFuture(RpcException.denied("permission denied: uid " + session.peer().uid() + " gid "
                    + session.peer().gid() + " is not allowed by the policy (allow_uids, allow_gids); closing the connection"));
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
     * An export whose fd cannot be duplicated is never left behind: if the daemon is out of fds it is released
     * and its response becomes -32005; if it was already released (device closed, shutdown) it is -32006.
     */
    private void sendWithExports(Object responses, List<Outcome> withFds) {
        Fd[] fds = new Fd[withFds.size()];
        int n = 0;
        for (Outcome o : withFds) {
            Export e = o.export;
            RpcException failed;
            try {
                Fd fd = e.dupFd();
                if (fd != null) {
                    fds[n] = fd;
                    o.response.getJsonObject("result").put("fd_index", n);
                    n++;
                    continue;
                }
                failed = new RpcException(ErrorCode.DEVICE_UNAVAILABLE, "export " + e.id()
                        + " was released before it could be sent", new JsonObject().put("device", e.device()));
                session.forget(e);
            } catch (KernelException k) {
                failed = new RpcException(ErrorCode.QUOTA_EXCEEDED, "the daemon is out of file descriptors (dup: "
                        + k.errnoName() + "); export " + e.id() + " was released; retry later",
                        new JsonObject().put("limit", "fds").put("errno", k.errno()).put("name", k.errnoName()));
                session.release(e, Cause.UNDELIVERABLE);
            }
            o.response.remove("result");
            o.response.put("error", failed.toJson());
        }
        Fd[] sent = java.util.Arrays.copyOf(fds, n);
        Buffer bytes = line(responses);
        if (sent.length == 0) {
            writer.write(bytes);
            return;
        }
        writer.writeWithFds(bytes, sent, () -> Fd.closeQuietly(sent));
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

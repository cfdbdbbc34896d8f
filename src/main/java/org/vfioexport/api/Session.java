package org.vfioexport.api;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetSocket;
import org.vfioexport.audit.Who;
import org.vfioexport.device.DeviceHandle;
import org.vfioexport.device.Export;
import org.vfioexport.device.ExportState;
import org.vfioexport.device.Watcher;
import org.vfioexport.events.Cause;
import org.vfioexport.events.JsonEncoding;
import org.vfioexport.events.Subscription;
import org.vfioexport.kernel.Importer;
import org.vfioexport.ffm.posix.PeerCredentials;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client connection: its credentials, its exports, its subscriptions, its lifecycle. Its lines are handled by
 * its {@link Dispatcher}. Everything here runs on the connection's event loop; results of device calls are brought
 * back to it with {@link #here(Future)} before they touch session state or the writer.
 */
public final class Session implements Watcher {
    private static final AtomicLong IDS = new AtomicLong();

    private final Service service;
    private final Context context;
    private final NetSocket socket;
    private final FdWriter writer;
    private final PeerCredentials peer;
    /** The peer for the audit journal, its executable read now: a pid reused later cannot change it. */
    private final Who who;
    private final UserAccounts.Account account;
    private final boolean authorised;
    private final String id = "conn-" + IDS.incrementAndGet();
    private final Map<String, Export> exports = new LinkedHashMap<>();
    private final Map<String, Subscription> subscriptions = new LinkedHashMap<>();
    /** What ends with the connection besides what it holds itself (fleet subscriptions). */
    private final List<Runnable> endHooks = new java.util.ArrayList<>();
    private final Map<String, Importer> importers = new java.util.LinkedHashMap<>();
    /** Exports this connection watches ({@code export.watch}), bounded by {@code max_watches_per_client}. */
    private final Map<String, Export> watched = new LinkedHashMap<>();
    private long importerCounter;
    private final List<Promise<Void>> flushWaiters = new java.util.ArrayList<>();
    private boolean flushCheckScheduled;
    private int exportsInFlight;
    private boolean closed;
    private Dispatcher dispatcher;

    /** {@code account} is the peer's, with this connection already counted in it. */
    Session(Service service, Vertx vertx, NetSocket socket, FdWriter writer, PeerCredentials peer,
            UserAccounts.Account account) {
        this.service = service;
        this.context = vertx.getOrCreateContext();
        this.socket = socket;
        this.writer = writer;
        this.peer = peer;
        this.who = Who.of(peer.pid(), peer.uid(), peer.gid());
        this.account = account;
        this.authorised = service.policy().allows(peer);
        account.add(this);
        writer.countFdsInFlight(account::fdsInFlight);
        // events paused because the client reads slowly go on once the writer has drained
        writer.onDrain(() -> {
            List.copyOf(subscriptions.values()).forEach(Subscription::resume);
            if (!flushWaiters.isEmpty()) scheduleFlushCheck();
        });
    }

    public String id() {
        return id;
    }

    public Service service() {
        return service;
    }

    public PeerCredentials peer() {
        return peer;
    }

    public Who who() {
        return who;
    }

    public UserAccounts.Account account() {
        return account;
    }

    void dispatcher(Dispatcher d) {
        this.dispatcher = d;
    }

    /** What this connection holds for its client right now, read on its loop: for tests and server state. */
    record Load(boolean inputPaused, long pendingOutputBytes) {}

    Future<Load> load() {
        Promise<Load> p = Promise.promise();
        context.runOnContext(v -> p.complete(new Load(dispatcher != null && dispatcher.isInputPaused(), writer.pendingBytes())));
        return p.future();
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

    public NetSocket socket() {
        return socket;
    }

    /** False for a client the policy does not allow: it may only call public methods. */
    public boolean isAuthorised() {
        return authorised;
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
    /** This client's export, or null (for routing; no error). */
    Export ownedExport(String exportId) {
        return exports.get(exportId);
    }

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

    /**
     * Reserves room for one more export under the client's and the user's quotas, or -32005. The user's slot is
     * held until the export's final release (or {@link #unreserveExport()} if it is never made).
     */
    public void reserveExport() {
        int limit = service.policy().maxExportsPerClient();
        // the table may still hold exports the device released on its own (close, shutdown): purge, an O(n) walk,
        // only when the cheap count says the quota is reached
        if (exports.size() + exportsInFlight >= limit && exports().size() + exportsInFlight >= limit) {
            throw RpcException.limit("max_exports_per_client", limit, "quota exceeded: this client already holds "
                    + limit + " exports (max_exports_per_client); release some first");
        }
        int perUid = service.policy().limits().maxExportsPerUid();
        if (!account.tryTakeExport(perUid)) {
            throw RpcException.limit("max_exports_per_uid", perUid, "quota exceeded: uid " + peer.uid()
                    + " already holds " + perUid + " exports over all its connections (max_exports_per_uid); release some first");
        }
        exportsInFlight++;
    }

    /**
     * Succeeds when the user has room for one more fd in flight (duplicated for sending, not yet received by the
     * client), else -32005. When the cheap count says no, every connection of the user first recounts what its
     * client has actually read, so that a client that did read its fds is never refused for them.
     */
    public Future<Void> roomForOneMoreFd() {
        int max = service.policy().limits().maxFdsInFlightPerUid();
        if (account.fdsInFlight() < max) return Future.succeededFuture();
        return here(account.recountFdsInFlight()).compose(v -> account.fdsInFlight() < max ? Future.succeededFuture()
                : Future.failedFuture(RpcException.limit("max_fds_in_flight_per_uid", max, "quota exceeded: "
                        + account.fdsInFlight() + " dma-buf fds sent to uid " + peer.uid()
                        + " are not yet received (max_fds_in_flight_per_uid); read the responses first")));
    }

    /**
     * Takes ownership of a new export (on the connection's loop). If the client went away while the export was
     * being made, it is released at once with cause session-end and false is returned.
     */
    public boolean adopt(Export e) {
        exportsInFlight--;
        e.whenReleased().thenRun(account::giveBackExport);
        if (closed) {
            release(e, Cause.SESSION_END);
            return false;
        }
        exports.put(e.id(), e);
        return true;
    }

    /** Drops an export the client will never get (released before its response could be sent). */
    void forget(Export e) {
        exports.remove(e.id());
    }

    public void unreserveExport() {
        exportsInFlight--;
        account.giveBackExport();
    }

    public Future<Export> release(Export e, Cause cause) {
        exports.remove(e.id());
        DeviceHandle h = service.devices().get(e.device());
        if (h == null) return Future.failedFuture(RpcException.noSuchExport(e.id()));
        Future<Export> f = h.release(e, cause);
        // after the release began: a handshake waiting for this export's answer has it (the export is going)
        if (watched.remove(e.id()) != null) h.unwatch(e, this);
        return f;
    }

    // ---- watches: the revocation handshake --------------------------------------------------------------------

    /**
     * Watches {@code e} ({@code export.watch}): room under {@code max_watches_per_client} or -32005, then the
     * device's watch (NO_SUCH_EXPORT once its release began). Watching twice is one watch.
     */
    Future<Boolean> watch(Export e) {
        if (!watched.containsKey(e.id())) {
            int max = service.handshake().maxWatchesPerClient();
            // watches of exports the device released on its own end with them: purge only when the count says full
            if (watched.size() >= max) watched.values().removeIf(x -> x.state() == ExportState.RELEASED);
            if (watched.size() >= max) {
                throw RpcException.limit("max_watches_per_client", max, "quota exceeded: this connection already "
                        + "watches " + max + " exports (handshake.max_watches_per_client); end some watches first");
            }
            watched.put(e.id(), e);
        }
        return service.devices().get(e.device()).watch(e, this)
                .onFailure(t -> watched.remove(e.id()));
    }

    /** Ends the watch of {@code e}; an answer a running handshake awaited from this connection counts as given. */
    Future<Boolean> unwatch(Export e) {
        watched.remove(e.id());
        return service.devices().get(e.device()).unwatch(e, this);
    }

    /**
     * A handshake began for an export this connection watches: the {@code export.revoking} notice, written on
     * this connection's loop (called inside the device's step, which must not wait).
     */
    @Override
    public void revoking(String device, String exportId, long seq, long deadlineMs) {
        context.runOnContext(v -> {
            if (closed) return;
            send(Wire.notification("export.revoking", new JsonObject().put("device", device).put("export_id", exportId)
                    .put("seq", seq).put("deadline_ms", deadlineMs)));
        });
    }

    // ---- importers (the simulated kernel's, or iommufd on Linux) ---------------------------------------------

    /**
     * Takes one of the user's importer slots, or -32005: an importer holds kernel objects (on Linux an IOAS and a
     * dup of the buffer's fd), so their number is bounded per uid. {@link #addImporter} then holds the slot; give it
     * back with {@link #giveBackImporterSlot} when the attach failed.
     */
    public void reserveImporter() {
        int max = service.policy().limits().maxImportersPerUid();
        if (!account.tryTakeImporter(max)) {
            throw RpcException.limit("max_importers_per_uid", max, "quota exceeded: uid " + peer.uid()
                    + " already has " + max + " importers over all its connections (max_importers_per_uid)");
        }
    }

    public void giveBackImporterSlot() {
        account.giveBackImporter();
    }

    /** Registers an importer this connection attached; it is detached when the connection ends. */
    public String addImporter(Importer importer) {
        String id = "imp-" + (++importerCounter);
        importers.put(id, importer);
        return id;
    }

    /** Whether {@code importerId} still names {@code importer} on this connection (not detached since). */
    public boolean holdsImporter(String importerId, Importer importer) {
        return importers.get(importerId) == importer;
    }

    public Importer importer(String importerId) {
        Importer i = importers.get(importerId);
        if (i == null) {
            throw RpcException.invalidParams("importer_id", "no such importer on this connection: " + importerId);
        }
        return i;
    }

    public Importer removeImporter(String importerId) {
        Importer i = importer(importerId);
        importers.remove(importerId);
        account.giveBackImporter();
        return i;
    }

    // ---- subscriptions ---------------------------------------------------------------------------------------

    /** Takes one of the user's subscription slots, or -32005; {@link #addSubscription} then holds it. */
    public void reserveSubscription() {
        int max = service.policy().limits().maxSubscriptionsPerUid();
        if (!account.tryTakeSubscription(max)) {
            throw RpcException.limit("max_subscriptions_per_uid", max, "quota exceeded: uid " + peer.uid()
                    + " already has " + max + " subscriptions over all its connections (max_subscriptions_per_uid)");
        }
    }

    public void addSubscription(Subscription s) {
        subscriptions.put(s.id(), s);
    }

    /** Gives back a slot {@link #reserveSubscription} took for a subscription held outside the session. */
    public void giveBackSubscriptionSlot() {
        account.giveBackSubscription();
    }

    /** Runs {@code r} when the connection ends, on its loop; for what lives outside the session (fleet streams). */
    public void onEnd(Runnable r) {
        if (closed) r.run();
        else endHooks.add(r);
    }

    public Subscription removeSubscription(String subscriptionId) {
        Subscription s = subscriptions.remove(subscriptionId);
        if (s != null) account.giveBackSubscription();
        return s;
    }

    /**
     * Completes once every subscription of this connection has handed the events it holds to the writer. A
     * response to a reset or memory toggle waits for it, so that the caller sees the operation's events first
     * even when its subscription was paused because the client read slowly (guarantee 4).
     */
    Future<Void> subscriptionsFlushed() {
        if (allFlushed()) return Future.succeededFuture();
        Promise<Void> p = Promise.promise();
        flushWaiters.add(p);
        scheduleFlushCheck();
        return p.future();
    }

    private boolean allFlushed() {
        for (Subscription s : subscriptions.values()) if (s.queued() > 0) return false;
        return true;
    }

    /**
     * Checks again after the tasks queued so far (the subscriptions' deliveries) have run. While the writer is
     * full nothing can move: the drain listener checks again then.
     */
    private void scheduleFlushCheck() {
        if (flushCheckScheduled) return;
        flushCheckScheduled = true;
        context.runOnContext(v -> {
            flushCheckScheduled = false;
            if (closed || allFlushed()) {
                List<Promise<Void>> done = List.copyOf(flushWaiters);
                flushWaiters.clear();
                done.forEach(Promise::tryComplete);
            } else if (!writer.isFull()) {
                scheduleFlushCheck();
            }
        });
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
        // whatever a handshake still awaited from this connection counts as given
        java.util.Set<String> watchedDevices = new java.util.HashSet<>();
        for (Export e : watched.values()) watchedDevices.add(e.device());
        watched.clear();
        for (String d : watchedDevices) service.devices().get(d).watcherGone(this);
        for (Importer i : importers.values()) {
            i.close();
            account.giveBackImporter();
        }
        importers.clear();
        for (Subscription s : subscriptions.values()) {
            s.close();
            account.giveBackSubscription();
        }
        subscriptions.clear();
        List.copyOf(endHooks).forEach(Runnable::run);
        endHooks.clear();
        writer.close();
        account.remove(this);
        account.closeConnection();
        service.sessions().remove(this);
    }

    /** Shutdown, first step (on this connection's loop): no further line is read; lines read are answered. */
    public void stopReading() {
        if (dispatcher != null) dispatcher.stopReading();
    }

    /**
     * Shutdown, last step (on this connection's loop): waits at most {@code flushMillis} for what is queued to
     * reach the kernel, then half-closes, so that the client reads every answer and then EOF (never ECONNRESET),
     * and discards whatever the client still sends until it closes or {@code lingerMillis} more have passed. A
     * client that does not read cannot hold the daemon: its queued output is dropped at the deadline.
     */
    public Future<Void> shutdown(long flushMillis, long lingerMillis) {
        stopReading();
        Promise<Void> done = Promise.promise();
        Vertx vertx = context.owner();
        long[] timers = new long[2];
        Runnable halfClose = () -> {
            if (done.future().isComplete()) return;
            vertx.cancelTimer(timers[0]);
            writer.close();
            if (closed || !writer.shutdownOutput()) {
                socket.close();
                done.tryComplete();
                return;
            }
            // drain and drop the client's input: closing with unread input would reset the connection
            socket.handler(b -> { });
            socket.resume();
            timers[1] = vertx.setTimer(lingerMillis, id -> socket.close());
            socket.closeHandler(v -> {
                vertx.cancelTimer(timers[1]);
                end();
                done.tryComplete();
            });
        };
        timers[0] = vertx.setTimer(Math.max(1, flushMillis), id -> halfClose.run());
        writer.flushed().onComplete(ar -> halfClose.run());
        return done.future();
    }

    /** Writes one JSON message as a line. */
    public void send(JsonObject message) {
        writer.write(line(message));
    }

    static Buffer line(Object json) {
        return JsonEncoding.encodeToBuffer(json).appendByte((byte) '\n');
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

}

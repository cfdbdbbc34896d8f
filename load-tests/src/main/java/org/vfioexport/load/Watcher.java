package org.vfioexport.load;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonObject;
import org.vfioexport.events.Cause;
import org.vfioexport.events.Event;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.events.EventType;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

/**
 * One subscriber on its own connection and thread: subscribes to every device, rebuilds each {@code event}
 * notification as an {@link Event} and feeds it to {@link EventInvariants}. Can be made slow (a pause every N
 * events) or stalled (reads nothing until {@link #unstall()}), to check that a slow reader gets {@code events.lost}
 * and never slows the devices.
 *
 * <p>Scoped (scope "own"): it subscribes to its own connection's exports only, makes them with
 * {@link #createExports}, releases them with {@link #releaseExports}, and checks its stream with the scoped rules
 * ({@link EventInvariants#scoped()}); it counts the revokes it receives and when the last arrived.
 */
final class Watcher implements AutoCloseable {
    private final int sock;
    private final EventInvariants invariants;
    /** The subscription's scope param, or null for every event. */
    private final String scope;
    /** Ids of the exports this connection made (scoped watchers), and the responses still awaited. */
    private final List<String> ownExports = new ArrayList<>();
    private volatile CountDownLatch pendingResponses;
    /** export.revoked events received, and the arrival (nanoTime) of the latest. */
    private volatile long revoked, lastRevokedAt;
    private final Map<String, Long> lastSeq = new ConcurrentHashMap<>();
    /** Arrival time (nanoTime) of every device.state event, by device and seq. */
    final Map<String, Map<Long, Long>> stateArrivals = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile boolean stop;
    private volatile CountDownLatch stalled;
    private final int slowEvery;
    private final long slowNanos;
    private volatile long events, lostEvents, lostNotices;
    private volatile boolean closedByServer;
    private final List<String> errors = new ArrayList<>();
    private final CountDownLatch subscribed = new CountDownLatch(1);

    Watcher(Path socket, String name, boolean stalled, int slowEvery, long slowNanos) throws IOException {
        this(socket, name, stalled, slowEvery, slowNanos, null);
    }

    /** A watcher whose subscription has {@code scope} ("own", or null for every event), reading at full speed. */
    Watcher(Path socket, String name, String scope) throws IOException {
        this(socket, name, false, 0, 0, scope);
    }

    private Watcher(Path socket, String name, boolean stalled, int slowEvery, long slowNanos, String scope) throws IOException {
        this.scope = scope;
        this.invariants = scope == null ? new EventInvariants() : EventInvariants.scoped();
        try {
            sock = Posix.connectUnix(socket.toString());
        } catch (PosixException e) {
            throw new IOException("connect " + socket + ": errno " + e.errno(), e);
        }
        this.stalled = stalled ? new CountDownLatch(1) : null;
        this.slowEvery = slowEvery;
        this.slowNanos = slowNanos;
        // since 0 for every device: a watcher that joins late gets the retained events, and an events.lost for
        // older ones, so its view starts at seq 1 like the others'
        StringBuilder since = new StringBuilder();
        for (String d : Scenarios.DEVICES) since.append(since.isEmpty() ? "" : ",").append('"').append(d).append("\":0");
        send("{\"jsonrpc\":\"2.0\",\"id\":\"sub\",\"method\":\"events.subscribe\",\"params\":{\"since\":{" + since + "}"
                + (scope == null ? "" : ",\"scope\":\"" + scope + "\"") + "}}\n");
        thread = new Thread(this::run, "watcher-" + name);
        thread.setDaemon(true);
        thread.start();
        try {
            subscribed.await();
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
        synchronized (errors) {
            if (!errors.isEmpty()) throw new IOException(errors.getFirst());
        }
    }

    Watcher(Path socket, String name) throws IOException {
        this(socket, name, false, 0, 0);
    }

    private void send(String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        try {
            int off = 0;
            while (off < b.length) off += (int) Posix.sendWithFds(sock, b, off, b.length - off, new int[0], 0);
        } catch (PosixException e) {
            throw new IOException("send: errno " + e.errno(), e);
        }
    }

    private void run() {
        byte[] rx = new byte[1 << 14];
        byte[] buf = new byte[1 << 17];
        int len = 0;
        boolean waitingSub = true;
        try {
            while (!stop) {
                if (!waitingSub) {
                    CountDownLatch s = stalled;
                    if (s != null) s.await();
                }
                if (Posix.poll(sock, Posix.POLLIN, 100) == 0) continue;
                Posix.Received r = Posix.recvWithFds(sock, rx, 4);
                for (int fd : r.fds()) Posix.close(fd);
                if (r.length() == 0) {
                    closedByServer = true;
                    break;
                }
                if (len + r.length() > buf.length) buf = java.util.Arrays.copyOf(buf, Math.max(buf.length * 2, len + r.length()));
                System.arraycopy(rx, 0, buf, len, r.length());
                len += r.length();
                int start = 0;
                for (int i = 0; i < len; i++) {
                    if (buf[i] != '\n') continue;
                    String line = new String(buf, start, i - start, StandardCharsets.UTF_8);
                    start = i + 1;
                    if (line.startsWith(EVENT_PREFIX)) {
                        onEvent(line, System.nanoTime());
                    } else if (line.startsWith(OWN_RESPONSE_PREFIX + "x") || line.startsWith(OWN_RESPONSE_PREFIX + "r")) {
                        onOwnResponse(line);
                    } else if (waitingSub && line.contains("\"id\":\"sub\"")) {
                        JsonObject o = (JsonObject) Json.decodeValue(line);
                        if (!o.containsKey("result")) error("events.subscribe failed: " + line);
                        waitingSub = false;
                        subscribed.countDown();
                    }
                }
                System.arraycopy(buf, start, buf, 0, len - start);
                len -= start;
            }
        } catch (Exception e) {
            if (!stop) error("watcher: " + e);
        } finally {
            subscribed.countDown();
        }
    }

    /** Responses to this watcher's own export.create ("id":"x…") and export.release ("id":"r…"). */
    static final String OWN_RESPONSE_PREFIX = "{\"jsonrpc\":\"2.0\",\"id\":\"";

    private void onOwnResponse(String line) {
        boolean create = line.startsWith(OWN_RESPONSE_PREFIX + "x");
        if (line.contains("\"error\"")) error((create ? "export.create" : "export.release") + " failed: " + line);
        else if (create) {
            synchronized (ownExports) {
                ownExports.add(str(line, "\"export_id\":\""));
            }
        }
        CountDownLatch p = pendingResponses;
        if (p != null) p.countDown();
    }

    /** Makes {@code n} exports of {@code device} on this watcher's connection, pipelined; their fds are closed. */
    void createExports(String device, int n, long timeoutMs) throws IOException, InterruptedException {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append("{\"jsonrpc\":\"2.0\",\"id\":\"x").append(i).append("\",\"method\":\"export.create\",\"params\":{\"device\":\"")
                    .append(device).append("\",\"region\":0,\"offset\":0,\"length\":4096}}\n");
        }
        awaitResponses(b, n, timeoutMs, "export.create");
    }

    /** Releases every export {@link #createExports} made, and waits for the answers. */
    void releaseExports(long timeoutMs) throws IOException, InterruptedException {
        List<String> ids;
        synchronized (ownExports) {
            ids = List.copyOf(ownExports);
            ownExports.clear();
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < ids.size(); i++) {
            b.append("{\"jsonrpc\":\"2.0\",\"id\":\"r").append(i).append("\",\"method\":\"export.release\",\"params\":{\"export_id\":\"")
                    .append(ids.get(i)).append("\"}}\n");
        }
        awaitResponses(b, ids.size(), timeoutMs, "export.release");
    }

    private void awaitResponses(StringBuilder requests, int n, long timeoutMs, String what) throws IOException, InterruptedException {
        CountDownLatch done = new CountDownLatch(n);
        pendingResponses = done;
        send(requests.toString());
        if (!done.await(timeoutMs, java.util.concurrent.TimeUnit.MILLISECONDS)) {
            throw new IOException(what + ": " + done.getCount() + " of " + n + " responses missing after " + timeoutMs + " ms");
        }
        pendingResponses = null;
        synchronized (errors) {
            if (!errors.isEmpty()) throw new IOException(errors.getFirst());
        }
    }

    long revoked() {
        return revoked;
    }

    /** Arrival (nanoTime) of the latest export.revoked. */
    long lastRevokedAt() {
        return lastRevokedAt;
    }

    static final String EVENT_PREFIX = "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{";

    private void onEvent(String line, long now) throws InterruptedException {
        Event e = parse(line);
        if (e.type() == EventType.EVENTS_LOST) {
            lostNotices++;
            lostEvents += e.toSeq() - e.fromSeq() + 1;
            lastSeq.put(e.device(), e.toSeq());
        } else {
            lastSeq.put(e.device(), e.seq());
        }
        if (e.type() == EventType.EXPORT_REVOKED) {
            lastRevokedAt = now;
            revoked++;
        }
        if (e.type() == EventType.DEVICE_STATE) stateArrivals.computeIfAbsent(e.device(), d -> new ConcurrentHashMap<>()).put(e.seq(), now);
        synchronized (invariants) {
            invariants.accept(e);
        }
        long n = ++events;
        if (slowEvery > 0 && n % slowEvery == 0) Thread.sleep(slowNanos / 1_000_000, (int) (slowNanos % 1_000_000));
    }

    /** Rebuilds an Event from an event notification (the server writes its fields in a fixed order; parsed by key). */
    static Event parse(String line) {
        String device = str(line, "\"device\":\"");
        EventType type = type(str(line, "\"type\":\""));
        String exportId = str(line, "\"export_id\":\"");
        String cause = str(line, "\"cause\":\"");
        String state = str(line, "\"state\":\"");
        long seq = num(line, "\"seq\":");
        long from = num(line, "\"from_seq\":");
        long to = num(line, "\"to_seq\":");
        return new Event(seq, device, type, exportId, cause == null ? null : cause(cause), Instant.EPOCH, state, from, to);
    }

    private static String str(String s, String key) {
        int i = s.indexOf(key);
        if (i < 0) return null;
        i += key.length();
        int j = s.indexOf('"', i);
        return s.substring(i, j);
    }

    private static long num(String s, String key) {
        int i = s.indexOf(key);
        if (i < 0) return 0;
        i += key.length();
        long v = 0;
        for (; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') break;
            v = v * 10 + (c - '0');
        }
        return v;
    }

    private static EventType type(String wire) {
        for (EventType t : EventType.values()) if (t.wire.equals(wire)) return t;
        throw new IllegalArgumentException("unknown event type " + wire);
    }

    private static Cause cause(String wire) {
        for (Cause c : Cause.values()) if (c.wire.equals(wire)) return c;
        throw new IllegalArgumentException("unknown cause " + wire);
    }

    private void error(String s) {
        synchronized (errors) {
            errors.add(s);
        }
    }

    void unstall() {
        CountDownLatch s = stalled;
        stalled = null;
        if (s != null) s.countDown();
    }

    long lastSeq(String device) {
        return lastSeq.getOrDefault(device, 0L);
    }

    /** Waits until this watcher has seen (or been told it lost) every event up to {@code heads}. */
    boolean awaitHeads(Map<String, Long> heads, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline) {
            boolean all = true;
            for (var h : heads.entrySet()) if (lastSeq(h.getKey()) < h.getValue()) all = false;
            if (all) return true;
            Thread.sleep(2);
        }
        return false;
    }

    /** True once the daemon closed this subscriber's connection (end of file while reading). */
    boolean closedByServer() {
        return closedByServer;
    }

    long events() {
        return events;
    }

    long lostEvents() {
        return lostEvents;
    }

    long lostNotices() {
        return lostNotices;
    }

    /** Invariant violations, watcher errors, and exports never released (the load is over when this is asked). */
    List<String> violations(boolean expectAllReleased) {
        List<String> out = new ArrayList<>();
        synchronized (errors) {
            out.addAll(errors);
        }
        synchronized (invariants) {
            out.addAll(invariants.violations());
            if (expectAllReleased) {
                for (String d : lastSeq.keySet()) {
                    var un = invariants.unreleased(d);
                    un.removeIf(id -> false);
                    // after an events.lost the grammar of some exports is unknown: only judge exports we fully saw
                    if (lostNotices == 0 && !un.isEmpty()) {
                        out.add(d + ": " + un.size() + " exports never released, e.g. " + un.iterator().next());
                    }
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        stop = true;
        unstall();
        try {
            thread.join(2000);
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
        try {
            Posix.close(sock);
        } catch (PosixException ignored) {
            // closing is all we can do
        }
    }
}

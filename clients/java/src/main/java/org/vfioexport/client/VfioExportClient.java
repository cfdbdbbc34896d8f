package org.vfioexport.client;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.UnixSocket;

import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A blocking client of the vfio-export protocol over its Unix socket, for one thread.
 *
 * <p>Fds are received with {@code recvmsg}; the kernel delivers them with the read that returns the first byte of
 * the line carrying them, possibly together with bytes of earlier lines. So every received fd goes into a FIFO,
 * and a complete line that names N fds (results with {@code fd_index}) takes the next N from it.
 *
 * <p>Lines that arrive while waiting for a response are kept: notifications for {@link #nextEvent}, responses to
 * other ids for their own {@link #await}.
 *
 * <p>{@link #connect(Path)} reads through libc ({@code recvmsg}), so fds arrive. {@link #connectWithoutFds} reads
 * through the JDK's socket channel, which starts in a fraction of the time and cannot take fds: for callers that
 * want none (the command line, except {@code export}). JSON goes through {@link JsonText}: objects are
 * {@code Map<String, Object>}, arrays {@code List<Object>}, and the library needs nothing beyond the JDK (25, with
 * native access enabled for the fd passing: {@code --enable-native-access=ALL-UNNAMED}).
 */
public final class VfioExportClient implements AutoCloseable {
    public static final long DEFAULT_TIMEOUT_MS = 30_000;

    private final Transport sock;
    private final byte[] rx = new byte[65536];
    private byte[] buf = new byte[65536];
    private int len;
    private final ArrayDeque<Fd> fds = new ArrayDeque<>();
    private final ArrayDeque<Message> notifications = new ArrayDeque<>();
    private final Map<Object, Message> responses = new HashMap<>();
    private final Map<String, Object> hello;
    private long nextId = 1;
    private long timeoutMs = DEFAULT_TIMEOUT_MS;
    private boolean closed;

    private VfioExportClient(Transport sock, long timeoutMs) throws IOException {
        this.sock = sock;
        this.timeoutMs = timeoutMs;
        Message m;
        try {
            m = read(timeoutMs);
        } catch (IOException e) {
            sock.close();
            throw e;
        }
        if (!"hello".equals(m.method())) {
            sock.close();
            if (m.isObject() && Values.object(m.object().get("error")) instanceof Map<String, Object> error) {
                RpcError refused = RpcError.of(error);
                throw new IOException("the server refused the connection: " + refused.getMessage() + " (error "
                        + refused.code() + ")", refused);
            }
            throw new IOException("the server did not greet with hello: " + m.json());
        }
        hello = m.params();
    }

    /** Connects to the default socket ({@link SocketPath#resolve()}) and reads the greeting; fds arrive. */
    public static VfioExportClient connect() throws IOException {
        return connect(SocketPath.resolve());
    }

    /** Connects and reads the server's greeting; fds the server sends arrive. */
    public static VfioExportClient connect(Path socket) throws IOException {
        return connect(socket, true, DEFAULT_TIMEOUT_MS);
    }

    /** Connects without fd passing (see the class comment) and reads the greeting. */
    public static VfioExportClient connectWithoutFds(Path socket) throws IOException {
        return connect(socket, false, DEFAULT_TIMEOUT_MS);
    }

    /**
     * Connects, with fd passing or without, and reads the greeting within {@code timeoutMs}, which then bounds
     * every wait for a response. A socket that is not there or not listened on is a {@link ConnectFailedException}.
     */
    public static VfioExportClient connect(Path socket, boolean fds, long timeoutMs) throws IOException {
        return new VfioExportClient(fds ? PosixTransport.connect(socket) : ChannelTransport.connect(socket), timeoutMs);
    }

    /** The {@code hello} greeting's params: the server's version and capabilities. */
    public Map<String, Object> hello() {
        return hello;
    }

    /** The socket (for tests that inspect it); null without fd passing, where the JDK keeps it. */
    public UnixSocket socket() {
        return sock.socket();
    }

    /** Whether fds sent by the server arrive (they do unless connected with {@link #connectWithoutFds}). */
    public boolean passesFds() {
        return sock.passesFds();
    }

    public VfioExportClient timeout(long ms) {
        this.timeoutMs = ms;
        return this;
    }

    // ---- requests ----------------------------------------------------------------------------------------------

    /** Sends a request and returns its id without waiting (pipelining). */
    public Object send(String method, Map<String, ?> params) throws IOException {
        long id = nextId++;
        Map<String, Object> req = new LinkedHashMap<>();
        req.put("jsonrpc", "2.0");
        req.put("id", id);
        req.put("method", method);
        if (params != null) req.put("params", params);
        sendLine(JsonText.encode(req));
        return id;
    }

    /** Sends a notification (no id, no response). */
    public void notify(String method, Map<String, ?> params) throws IOException {
        Map<String, Object> req = new LinkedHashMap<>();
        req.put("jsonrpc", "2.0");
        req.put("method", method);
        if (params != null) req.put("params", params);
        sendLine(JsonText.encode(req));
    }

    /** Waits for the response to {@code id}. */
    public Message await(Object id) throws IOException {
        Message m = responses.remove(id);
        if (m != null) return m;
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            m = read(remaining(deadline, "the response to request " + id));
            if (m.isNotification()) {
                notifications.add(m);
            } else if (m.isObject() && id.equals(normalise(m.object().get("id")))) {
                return m;
            } else if (m.isObject()) {
                responses.put(normalise(m.object().get("id")), m);
            } else {
                responses.put("batch", m);
            }
        }
    }

    /** One request, its whole response message (result or error, and fds). */
    public Message call(String method, Map<String, ?> params) throws IOException {
        return await(send(method, params));
    }

    /** One request; its result, or the error as {@link RpcError}. Fds of the response are closed. */
    public Map<String, Object> request(String method, Map<String, ?> params) throws IOException, RpcError {
        Message m = call(method, params);
        Fd.closeQuietly(m.fds());
        Map<String, Object> o = m.object();
        if (o.containsKey("error")) throw RpcError.of(Values.object(o.get("error")));
        return Values.object(o.get("result"));
    }

    public Map<String, Object> request(String method) throws IOException, RpcError {
        return request(method, null);
    }

    /** {@code export.create} of one range; the caller owns the returned fd. */
    public ExportedBuffer export(String device, long region, long offset, long length) throws IOException, RpcError {
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("device", device);
        params.put("region", region);
        params.put("offset", offset);
        params.put("length", length);
        return export(params);
    }

    public ExportedBuffer export(Map<String, ?> params) throws IOException, RpcError {
        Message m = call("export.create", params);
        Map<String, Object> o = m.object();
        if (o.containsKey("error")) throw RpcError.of(Values.object(o.get("error")));
        if (!sock.passesFds()) throw new IOException("export.create needs fd passing: connect with connect(Path)");
        if (m.fds().length != 1) throw new IOException("export.create result came with " + m.fds().length + " fds");
        return new ExportedBuffer(Values.object(o.get("result")), m.fds()[0]);
    }

    /**
     * Sends a batch and waits for its one response line: an array, or one error object (id null) when the batch is
     * refused whole (empty, over max_batch, over SCM_MAX_FD). Absent when all were notifications: then times out.
     */
    public Message batch(List<?> requests) throws IOException {
        sendLine(JsonText.encode(requests));
        Message m = responses.remove("batch");
        if (m != null) return m;
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            m = read(remaining(deadline, "the batch response"));
            if (m.isNotification()) notifications.add(m);
            else if (!m.isObject()) return m;
            else if (m.object().get("id") == null && m.object().containsKey("error")) return m; // refused whole
            else responses.put(normalise(m.object().get("id")), m);
        }
    }

    /** The next {@code event} notification's params, waiting up to {@code timeoutMs}. */
    public Map<String, Object> nextEvent(long timeoutMs) throws IOException {
        return nextNotification("event", timeoutMs);
    }

    /**
     * The params of the next notification named {@code method}, waiting up to {@code timeoutMs}. Notifications of
     * other names that arrive meanwhile stay queued for their own readers.
     */
    public Map<String, Object> nextNotification(String method, long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            for (java.util.Iterator<Message> it = notifications.iterator(); it.hasNext(); ) {
                Message n = it.next();
                if (method.equals(n.method())) {
                    it.remove();
                    return n.params();
                }
            }
            Message m = read(remaining(deadline, "a " + method + " notification"));
            if (m.isNotification()) notifications.add(m);
            else if (m.isObject()) responses.put(normalise(m.object().get("id")), m);
            else responses.put("batch", m);
        }
    }

    /** True if an event is already here or arrives within {@code timeoutMs}. */
    public boolean hasEvent(long timeoutMs) throws IOException {
        for (Message n : notifications) if ("event".equals(n.method())) return true;
        try {
            Map<String, Object> e = nextEvent(timeoutMs);
            Map<String, Object> n = new LinkedHashMap<>();
            n.put("jsonrpc", "2.0");
            n.put("method", "event");
            n.put("params", e);
            notifications.addFirst(new Message(n, new Fd[0]));
            return true;
        } catch (TimeoutIOException t) {
            return false;
        }
    }

    // ---- raw lines ---------------------------------------------------------------------------------------------

    /** Writes {@code line} plus a newline. */
    public void sendLine(String line) throws IOException {
        sendRaw((line + "\n").getBytes(StandardCharsets.UTF_8));
    }

    public void sendRaw(byte[] bytes) throws IOException {
        int off = 0;
        while (off < bytes.length) {
            int n = sock.send(bytes, off, bytes.length - off);
            if (n == 0) { // no room now: wait for some
                awaitOrTimeout(true, timeoutMs, "room to send");
                continue;
            }
            off += n;
        }
    }

    /** The next line from the server, whatever it is, with its fds. */
    public Message read(long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            int nl = indexOf('\n');
            if (nl >= 0) {
                String line = new String(buf, 0, nl, StandardCharsets.UTF_8);
                System.arraycopy(buf, nl + 1, buf, 0, len - nl - 1);
                len -= nl + 1;
                return decode(line);
            }
            awaitOrTimeout(false, remaining(deadline, "a line from the server"), "a line from the server");
            int n = sock.receive(rx, fds);
            if (n < 0) continue; // woken without data
            if (n == 0) throw new EOFException("the server closed the connection");
            if (len + n > buf.length) buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
            System.arraycopy(rx, 0, buf, len, n);
            len += n;
        }
    }

    /** True once the server has closed the connection (reads what is pending, up to {@code timeoutMs}). */
    public boolean awaitClosed(long timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        try {
            while (true) {
                Message m = read(remaining(deadline, "the server to close"));
                Fd.closeQuietly(m.fds());
            }
        } catch (EOFException e) {
            return true;
        } catch (TimeoutIOException e) {
            return false;
        }
    }

    /** Fds received but not yet claimed by a line (should be 0 between lines). */
    public int unclaimedFds() {
        return fds.size();
    }

    private Message decode(String line) throws IOException {
        Object json;
        try {
            json = JsonText.parse(line);
        } catch (IllegalArgumentException e) {
            throw new IOException("the server sent a line that is not JSON (" + e.getMessage() + "): " + line, e);
        }
        if (!sock.passesFds()) return new Message(json, new Fd[0]); // the kernel dropped any fds at the read
        int wanted = 0;
        if (json instanceof Map<?, ?> o) wanted = carriesFd(o) ? 1 : 0;
        else if (json instanceof List<?> a) for (Object x : a) if (x instanceof Map<?, ?> o && carriesFd(o)) wanted++;
        if (fds.size() < wanted) {
            throw new IOException("a line names " + wanted + " fds but only " + fds.size() + " arrived: " + line);
        }
        Fd[] mine = new Fd[wanted];
        for (int i = 0; i < wanted; i++) mine[i] = fds.poll();
        return new Message(json, mine);
    }

    private static boolean carriesFd(Map<?, ?> response) {
        return response.get("result") instanceof Map<?, ?> r && r.containsKey("fd_index");
    }

    private int indexOf(char c) {
        for (int i = 0; i < len; i++) if (buf[i] == c) return i;
        return -1;
    }

    private static Object normalise(Object id) {
        return id instanceof Integer i ? (Object) i.longValue() : id;
    }

    private void awaitOrTimeout(boolean write, long ms, String what) throws IOException {
        if (!sock.await(write, ms)) throw new TimeoutIOException("no " + what + " within " + ms + " ms");
    }

    private static long remaining(long deadline, String what) throws TimeoutIOException {
        long ms = (deadline - System.nanoTime()) / 1_000_000;
        if (ms <= 0) throw new TimeoutIOException("timed out waiting for " + what);
        return ms;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Fd.closeQuietly(fds);
        fds.clear();
        sock.close();
    }
}

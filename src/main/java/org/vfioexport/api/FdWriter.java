package org.vfioexport.api;

import io.netty.buffer.Unpooled;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.NetSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * The only way bytes leave one connection: responses, events and lines that carry fds, in the order they were
 * written. Lines with fds go out with one {@code sendmsg} on the connection's socket ({@link FdSink}), the fds
 * attached to the line's first byte; every other line goes through Netty.
 *
 * <p>Order is kept by never calling {@code sendmsg} while Netty still holds bytes: an fd line waits (and every
 * line after it waits behind it) until Netty's outbound buffer is empty. Netty cannot be asked to wake us when the
 * kernel buffer has room for a write it did not make, so a would-block {@code sendmsg} is retried on a timer with
 * a growing backoff.
 *
 * <p>Used on the connection's event loop only. Fds handed in are owned by the writer until their line went out
 * (or the connection died); then the item's completion runs, which is where the caller closes them.
 */
public final class FdWriter {
    private static final Logger log = LoggerFactory.getLogger(FdWriter.class);
    private static final long MAX_BACKOFF_MS = 64;
    /** Lines queued here (not yet in Netty) beyond which the writer reports itself full. */
    private static final int QUEUE_HIGH_WATER = 1024;

    private record Item(Buffer line, Fd[] fds, Runnable done) {}

    private static final Fd[] NO_FDS = new Fd[0];

    private static final IntConsumer NO_COUNT = d -> { };

    private final Vertx vertx;
    private final Context context;
    private final NetSocket socket;
    private final FdSink sink;
    private final ArrayDeque<Item> queue = new ArrayDeque<>();
    private final List<Runnable> drainListeners = new ArrayList<>();
    private boolean waiting;
    private boolean reportedFull;
    private boolean closed;
    private long backoffMs = 1;
    private long timerId = -1;
    private long fdLinesSent;
    /** Bytes of the lines queued here (not yet handed to Netty or the kernel). */
    private long queuedBytes;
    private long maxQueuedBytes = Long.MAX_VALUE;
    /** Fds this writer holds or sent that the client has not yet received: queued + {@link #sentUnreceived}. */
    private int fdsInFlight;
    /** Fds sent since the socket's send queue was last seen empty (the client may not have read them yet). */
    private int sentUnreceived;
    private IntConsumer fdsInFlightDelta = NO_COUNT;
    private long waitsForNetty, waitsForKernel;

    public FdWriter(Vertx vertx, NetSocket socket) {
        this.vertx = vertx;
        this.context = vertx.getOrCreateContext();
        this.socket = socket;
        this.sink = EpollChannels.sink(socket);
        socket.drainHandler(v -> notifyDrained());
    }

    /** Reports itself full once more than {@code bytes} are queued here, whatever Netty holds. */
    public FdWriter maxQueuedBytes(long bytes) {
        this.maxQueuedBytes = bytes;
        return this;
    }

    /** Tells {@code delta} every change of this writer's fds in flight (a user's account sums them). */
    public void countFdsInFlight(IntConsumer delta) {
        this.fdsInFlightDelta = delta;
    }

    /** Fds queued here or sent and not yet received by the client. */
    public int fdsInFlight() {
        return fdsInFlight;
    }

    /**
     * Forgets the sent fds once the client has read everything sent so far (the socket's send queue is empty:
     * SIOCOUTQ), which is when the kernel handed it those fds. A client that reads only part of the stream keeps
     * them counted: the rule over-counts, never under-counts.
     */
    public void recountFdsInFlight() {
        if (sentUnreceived == 0 || closed) return;
        int unread;
        try {
            unread = sink.unreadByPeer();
        } catch (PosixException e) {
            return; // the socket is going away; close() settles the count
        }
        if (unread == 0) {
            changeFdsInFlight(-sentUnreceived);
            sentUnreceived = 0;
        }
    }

    private void changeFdsInFlight(int delta) {
        fdsInFlight += delta;
        fdsInFlightDelta.accept(delta);
    }

    /**
     * Runs {@code r} once every line written before this call has been handed to Netty or the kernel (or the
     * writer was closed): e.g. to close the connection after its last response.
     */
    public void afterWritten(Runnable r) {
        enqueue(new Item(null, NO_FDS, r));
    }

    /** Queues a line without fds. */
    public void write(Buffer line) {
        enqueue(new Item(line, NO_FDS, null));
    }

    /**
     * Queues a line whose first byte carries {@code fds}. {@code done} runs once the line went out or can no
     * longer go out (connection closed): only then may the caller close the fds.
     */
    public void writeWithFds(Buffer line, Fd[] fds, Runnable done) {
        enqueue(new Item(line, fds.clone(), done));
    }

    /** True when the caller should stop producing (events) until a drain listener fires. */
    public boolean isFull() {
        boolean full = queue.size() >= QUEUE_HIGH_WATER || queuedBytes > maxQueuedBytes || socket.writeQueueFull();
        if (full) reportedFull = true;
        return full;
    }

    /** Runs {@code r} each time the writer drains after having been full. */
    public void onDrain(Runnable r) {
        drainListeners.add(r);
    }

    /** The connection's context: every call belongs there. */
    public Context context() {
        return context;
    }

    public long fdLinesSent() {
        return fdLinesSent;
    }

    /** How often an fd line waited for Netty to empty (lines ahead of it in Netty's buffer). */
    public long waitsForNetty() {
        return waitsForNetty;
    }

    /** How often an fd line found the kernel's socket buffer full and was retried on a timer. */
    public long waitsForKernel() {
        return waitsForKernel;
    }

    /** Drops every queued line, completing fd items so their fds get closed. Idempotent. */
    public void close() {
        if (closed) return;
        closed = true;
        if (timerId >= 0) vertx.cancelTimer(timerId);
        Item it;
        while ((it = queue.poll()) != null) complete(it);
        queuedBytes = 0;
        // fds still in the client's receive queue go with the connection: they no longer count against the user
        changeFdsInFlight(-fdsInFlight);
        sentUnreceived = 0;
    }

    /** Completes once every line written so far has been handed to the kernel (or the connection closed). */
    public Future<Void> flushed() {
        Promise<Void> p = Promise.promise();
        afterWritten(() -> {
            if (closed) {
                p.tryComplete();
                return;
            }
            // an empty message completes once Netty has written everything queued before it
            ((NetSocketInternal) socket).writeMessage(Unpooled.EMPTY_BUFFER).onComplete(ar -> p.tryComplete());
        });
        return p.future();
    }

    /** Half-closes the connection (the client reads what was sent, then EOF); false if it is already closed. */
    public boolean shutdownOutput() {
        return sink.shutdownOutput();
    }

    /** Bytes written and not yet handed to the kernel: queued here, and held by Netty. */
    public long pendingBytes() {
        return queuedBytes + sink.transportPendingBytes();
    }

    /** True when nothing is queued here nor in Netty: everything written has reached the kernel. */
    public boolean isFlushed() {
        return queue.isEmpty() && sink.transportEmpty();
    }

    public boolean isClosed() {
        return closed;
    }

    private void enqueue(Item it) {
        if (Vertx.currentContext() != context) {
            // a safety net for a caller on another thread; the service itself always writes on the connection's loop
            context.runOnContext(v -> enqueue(it));
            return;
        }
        if (closed) {
            complete(it);
            return;
        }
        queue.add(it);
        if (it.line != null) queuedBytes += it.line.length();
        if (it.fds.length > 0) changeFdsInFlight(it.fds.length);
        pump();
    }

    private void pump() {
        while (!closed && !waiting && !queue.isEmpty()) {
            Item it = queue.peek();
            if (it.line == null) { // a marker of afterWritten
                queue.poll();
                complete(it);
                continue;
            }
            if (it.fds.length == 0) {
                queue.poll();
                queuedBytes -= it.line.length();
                socket.write(it.line);
                continue;
            }
            if (!sink.isOpen()) { // the channel is closed
                abort();
                return;
            }
            // Vert.x defers flushes while it handles a read batch; unflushed writes would be invisible otherwise
            sink.flush();
            if (!sink.transportEmpty()) {
                waitsForNetty++;
                waiting = true;
                ((NetSocketInternal) socket).writeMessage(Unpooled.EMPTY_BUFFER).onComplete(r -> {
                    waiting = false;
                    pump();
                });
                return;
            }
            recountFdsInFlight();
            byte[] bytes = it.line.getBytes();
            long n;
            try {
                n = sink.sendWithFds(bytes, it.fds);
            } catch (PosixException e) {
                // PeerClosedException: the peer is gone; ETOOMANYREFS: the peer holds too many fds in flight (it
                // does not read) and we can never send it more. Either way the connection is over.
                if (e.is(Errno.ETOOMANYREFS)) {
                    log.warn("closing a connection that does not read its fds (ETOOMANYREFS)");
                }
                abort();
                return;
            }
            if (n < 0) { // EAGAIN with Netty empty: the kernel buffer is full, nothing was sent
                waitsForKernel++;
                waiting = true;
                timerId = vertx.setTimer(backoffMs, id -> {
                    timerId = -1;
                    waiting = false;
                    pump();
                });
                backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
                return;
            }
            backoffMs = 1;
            queue.poll();
            queuedBytes -= it.line.length();
            sentUnreceived += it.fds.length;
            fdLinesSent++;
            complete(it); // the kernel holds its own references to the fds now
            if (n < bytes.length) socket.write(Buffer.buffer(bytes).slice((int) n, bytes.length));
        }
        if (queue.isEmpty() && !socket.writeQueueFull()) notifyDrained();
    }

    private void notifyDrained() {
        if (!reportedFull || closed || !queue.isEmpty() || socket.writeQueueFull()) return;
        reportedFull = false;
        for (Runnable r : List.copyOf(drainListeners)) r.run();
    }

    private void abort() {
        close();
        socket.close();
    }

    private void complete(Item it) {
        if (it.done != null) it.done.run();
    }
}

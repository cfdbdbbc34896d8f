package org.vfioexport.api;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.NetSocket;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The only way bytes leave one connection: responses, events and lines that carry fds, in the order they were
 * written. Lines with fds go out with one {@code sendmsg} on the socket's raw fd, the fds attached to the line's
 * first byte; every other line goes through Netty.
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
    /** errno values the writer acts on. */
    private static final int ETOOMANYREFS = 109;
    private static final long MAX_BACKOFF_MS = 64;
    /** Lines queued here (not yet in Netty) beyond which the writer reports itself full. */
    private static final int QUEUE_HIGH_WATER = 1024;

    private record Item(Buffer line, int[] fds, Runnable done) {}

    private final Vertx vertx;
    private final Context context;
    private final NetSocket socket;
    private final Channel channel;
    private final int sockFd;
    private final ArrayDeque<Item> queue = new ArrayDeque<>();
    private final List<Runnable> drainListeners = new ArrayList<>();
    private boolean waiting;
    private boolean reportedFull;
    private boolean closed;
    private long backoffMs = 1;
    private long timerId = -1;
    private long fdLinesSent;
    private long waitsForNetty, waitsForKernel;

    public FdWriter(Vertx vertx, NetSocket socket) {
        this.vertx = vertx;
        this.context = vertx.getOrCreateContext();
        this.socket = socket;
        this.channel = ((NetSocketInternal) socket).channelHandlerContext().channel();
        if (!(channel instanceof EpollDomainSocketChannel ep)) {
            throw new IllegalStateException("fd passing needs the native epoll transport, got " + channel.getClass().getName());
        }
        this.sockFd = ep.fd().intValue();
        socket.drainHandler(v -> notifyDrained());
    }

    /** Queues a line without fds. */
    public void write(Buffer line) {
        enqueue(new Item(line, new int[0], null));
    }

    /**
     * Queues a line whose first byte carries {@code fds}. {@code done} runs once the line went out or can no
     * longer go out (connection closed): only then may the caller close the fds.
     */
    public void writeWithFds(Buffer line, int[] fds, Runnable done) {
        enqueue(new Item(line, fds.clone(), done));
    }

    /** True when the caller should stop producing (events) until a drain listener fires. */
    public boolean isFull() {
        boolean full = queue.size() >= QUEUE_HIGH_WATER || socket.writeQueueFull();
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
        pump();
    }

    private void pump() {
        while (!closed && !waiting && !queue.isEmpty()) {
            Item it = queue.peek();
            if (it.fds.length == 0) {
                queue.poll();
                socket.write(it.line);
                continue;
            }
            ChannelOutboundBuffer ob = channel.unsafe().outboundBuffer();
            if (ob == null) { // the channel is closed
                abort();
                return;
            }
            // Vert.x defers flushes while it handles a read batch; unflushed writes would be invisible to isEmpty()
            channel.flush();
            if (!ob.isEmpty()) {
                waitsForNetty++;
                waiting = true;
                ((NetSocketInternal) socket).writeMessage(Unpooled.EMPTY_BUFFER).onComplete(r -> {
                    waiting = false;
                    pump();
                });
                return;
            }
            byte[] bytes = it.line.getBytes();
            long n;
            try {
                n = Posix.sendWithFds(sockFd, bytes, 0, bytes.length, it.fds, Posix.MSG_DONTWAIT);
            } catch (PosixException e) {
                // EPIPE/ECONNRESET: the peer is gone; ETOOMANYREFS: the peer holds too many fds in flight (it does
                // not read) and we can never send it more. Either way the connection is over.
                if (e.errno() == ETOOMANYREFS) {
                    System.err.println("vfio-exportd: closing a connection that does not read its fds (ETOOMANYREFS)");
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

    private static void complete(Item it) {
        if (it.done != null) it.done.run();
    }
}

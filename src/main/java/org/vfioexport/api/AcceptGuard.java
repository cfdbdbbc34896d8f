package org.vfioexport.api;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.unix.Errors;
import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.Host;
import org.vfioexport.ffm.posix.PeerCredentials;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.UnixSocket;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The listening socket's first handler: keeps the listener serving when the process runs out of fds.
 *
 * <p>When accept(2) fails with EMFILE or ENFILE the connection stays in the backlog; Netty fires the error down the
 * listening channel's pipeline, where its acceptor would pause accepting for 1 s and the pipeline's tail would log
 * a warning with a stack trace for every failure. This handler takes the error first and does what servers do
 * instead: it closes its {@link ReserveFd}, accepts one pending connection into the freed slot, writes it one
 * JSON-RPC error line (-32005, {@link #MESSAGE}; non-blocking: a fresh connection's buffer is empty), closes it and
 * reopens the reserve, for every pending connection; then it pauses accepting for {@link #BACKOFF_MS} so that a
 * shortage that outlives the drain cannot spin the event loop, and logs through a rate-limited
 * {@link FdShortageLog}. Other accept errors go on to Netty's handling.
 *
 * <p>Nothing here needs an fd it does not hold: the accept uses the reserve's slot; sending and closing need none;
 * the log is formatted by a logging set-up warmed up at start-up (app/Logging); and every class and downcall of
 * this path is exercised once when the handler is added, since loading a class from a directory on the class path
 * opens its file.
 *
 * <p>Runs on the listening channel's event loop only, so it needs no locking.
 */
final class AcceptGuard extends ChannelInboundHandlerAdapter {
    /**
     * Told of each connection turned away, on the listener's event loop, with the peer's credentials (read from the
     * accepted socket: no fd needed) and the limit: the daemon counts and audits it. It must not load classes or
     * open files (the process is out of fds); what it needs is made when it is installed.
     */
    interface Refusals {
        Refusals NONE = (peer, limit, code, message) -> { };

        void turnedAway(PeerCredentials peer, String limit, int code, String message);
    }

    /** Pause after a shortage before accepting again (Netty's own acceptor pauses 1 s). */
    static final long BACKOFF_MS = 250;
    /** The refusal's message: stable, clients may show it. */
    static final String MESSAGE = "server out of file descriptors; try again later";
    /** Most pending connections turned away per shortage: a bound on one event-loop turn; the rest wait a back-off. */
    private static final int MAX_TURNED_AWAY = 4096;
    private static final int EMFILE = Errno.EMFILE.value, ENFILE = Errno.ENFILE.value;

    private final java.util.function.Supplier<Refusals> refusals;
    private final ReserveFd reserve = new ReserveFd();
    private final FdShortageLog log = new FdShortageLog();
    private final long fileMax = fileMax();
    private Runnable resume;
    private boolean paused;

    /** {@code refusals}: where turned-away connections are reported, read at each one (set once the server listens). */
    AcceptGuard(java.util.function.Supplier<Refusals> refusals) {
        this.refusals = refusals;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        reserve.restore();
        resume = () -> resume(ctx);
        warmUp();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        reserve.close();
        log.close();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object child) {
        log.accepted(System.nanoTime());
        ctx.fireChannelRead(child);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        int errno = fdShortage(cause);
        if (errno == 0) {
            ctx.fireExceptionCaught(cause);
            return;
        }
        // not passed on: this handler pauses and logs in place of Netty's acceptor and the pipeline's tail
        int turnedAway = turnAwayPending(EpollChannels.listeningSocket(ctx.channel()), errno);
        log.shortage(Errno.nameOf(errno), turnedAway, reserve.held(), System.nanoTime());
        pause(ctx);
    }

    /** EMFILE or ENFILE when {@code cause} is an accept that failed for want of an fd, else 0. */
    static int fdShortage(Throwable cause) {
        if (cause instanceof Errors.NativeIoException e) {
            int errno = Math.abs(e.expectedErr());
            if (errno == EMFILE || errno == ENFILE) return errno;
        }
        return 0;
    }

    /** Answers and closes pending connections, one at a time in the reserve's slot; returns how many. */
    private int turnAwayPending(UnixSocket listening, int errno) {
        byte[] line = refusal(errno);
        String limit = errno == ENFILE ? "fs.file-max" : "RLIMIT_NOFILE";
        int n = 0;
        while (n < MAX_TURNED_AWAY && (reserve.held() || reserve.restore())) {
            reserve.release();
            UnixSocket pending = acceptPending(listening);
            if (pending != null) {
                report(pending, limit);
                refuse(pending, line);
                n++;
            }
            if (!reserve.restore() || pending == null) break; // no slot for the next one, or the backlog is drained
        }
        return n;
    }

    /** A pending connection, or null when none is pending or another thread took the freed slot first. */
    private static UnixSocket acceptPending(UnixSocket listening) {
        try {
            return listening.acceptNonBlocking();
        } catch (PosixException e) {
            return null;
        }
    }

    /** Tells {@link #refusals} who is turned away; a failure there never stops the turning away. */
    private void report(UnixSocket connection, String limit) {
        try {
            refusals.get().turnedAway(connection.peerCredentials(), limit, ErrorCode.QUOTA_EXCEEDED.code, MESSAGE);
        } catch (PosixException | RuntimeException | LinkageError e) {
            // not counted: the client is gone, or the process could not even load what counting needs
        }
    }

    private static void refuse(UnixSocket connection, byte[] line) {
        try {
            connection.send(line, 0, line.length, true);
        } catch (PosixException e) {
            // the client is gone already
        }
        Fd.closeQuietly(connection); // fails with EBADF only, a bug
    }

    /**
     * The line sent before closing: a JSON-RPC error with {@code id} null, code -32005 (a limit of the server was
     * reached; data names it: {@code RLIMIT_NOFILE} for EMFILE, {@code fs.file-max} for ENFILE).
     */
    byte[] refusal(int errno) {
        JsonObject data = errno == ENFILE
                ? new JsonObject().put("limit", "fds").put("resource", "fs.file-max").put("max", fileMax)
                : new JsonObject().put("limit", "fds").put("resource", "RLIMIT_NOFILE").put("max", nofile());
        RpcException e = new RpcException(ErrorCode.QUOTA_EXCEEDED, MESSAGE, data);
        return (Wire.error(null, e).encode() + "\n").getBytes(StandardCharsets.UTF_8);
    }

    private static long nofile() {
        try {
            return Host.openFileLimit();
        } catch (PosixException e) {
            return -1;
        }
    }

    /** The system-wide fd limit, read once at start (reading it later would take an fd). */
    private static long fileMax() {
        try {
            return Long.parseLong(Files.readString(Path.of("/proc/sys/fs/file-max")).trim());
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    private void pause(ChannelHandlerContext ctx) {
        if (paused) return;
        paused = true;
        ctx.channel().config().setAutoRead(false);
        ctx.executor().schedule(resume, BACKOFF_MS, TimeUnit.MILLISECONDS);
    }

    private void resume(ChannelHandlerContext ctx) {
        paused = false;
        reserve.restore();
        if (ctx.channel().isOpen()) ctx.channel().config().setAutoRead(true);
    }

    /**
     * Runs this handler's shortage path once where it cannot fail, so that its classes are loaded and its
     * downcalls linked now: the refusals are built, every typed exception an errno can become is made, and accept,
     * peer credentials, send and close are tried on a fresh socket pair (accept fails: it does not listen).
     */
    private void warmUp() {
        fdShortage(new Errors.NativeIoException("accept", -EMFILE, false));
        Errno.nameOf(EMFILE);
        for (Errno e : Errno.values()) Errno.exception("warm-up", e.value);
        refusal(EMFILE);
        refusal(ENFILE);
        UnixSocket[] pair;
        try {
            pair = UnixSocket.pair();
        } catch (PosixException e) {
            return; // no fds even now: nothing to warm up with
        }
        acceptPending(pair[0]);
        try {
            pair[0].peerCredentials(); // as report() reads them, without reporting anyone
        } catch (PosixException e) {
            // cannot happen on a socket pair; the warm-up is done either way
        }
        refuse(pair[0], refusal(EMFILE));
        Fd.closeQuietly(pair[1]);
    }
}

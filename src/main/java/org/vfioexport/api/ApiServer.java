package org.vfioexport.api;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import org.vfioexport.audit.Who;
import org.vfioexport.ffm.posix.PeerCredentials;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.UnixSocket;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The protocol's listener: a Vert.x NetServer on a Unix domain socket, on the native epoll transport (needed for
 * fd passing and peer credentials). Each accepted connection becomes a {@link Session}. The listening socket's
 * pipeline starts with an {@link AcceptGuard} (installed by {@link GuardedTransport}), which answers and closes
 * connections it cannot accept for want of fds and keeps the listener going.
 */
public final class ApiServer {
    private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(ApiServer.class);
    private final Vertx vertx;
    private final Service service;
    private NetServer server;
    private Path socketPath;

    public ApiServer(Vertx vertx, Service service) {
        this.vertx = vertx;
        this.service = service;
    }

    /** Binds {@code path} (which must not exist) with mode 0660 and the daemon's own group. */
    public Future<Void> listen(Path path) {
        return listen(path, PosixFilePermissions.fromString("rw-rw----"), null);
    }

    /**
     * Serves on {@code socket}, a Unix stream socket already bound to {@code path} and listening (socket
     * activation): nothing is bound, chmod'ed or renamed, and closing the server leaves the socket file to its
     * owner. The server's channel takes the socket over.
     */
    public Future<Void> listenInherited(UnixSocket socket, Path path) {
        Future<Void> ready = checkTransport();
        if (ready.failed()) return ready;
        this.socketPath = path;
        ((GuardedTransport.Spi) ((VertxInternal) vertx).transport()).inherit(socket);
        server = vertx.createNetServer().connectHandler(this::accept);
        return server.listen(SocketAddress.domainSocketAddress(path.toString())).mapEmpty();
    }

    private Future<Void> checkTransport() {
        if (!vertx.isNativeTransportEnabled()) {
            return Future.failedFuture(new IllegalStateException("the native epoll transport is not available ("
                    + vertx.unavailableNativeTransportCause() + "); fd passing needs it"));
        }
        if (!GuardedTransport.guards(((VertxInternal) vertx).transport())) {
            return Future.failedFuture(new IllegalStateException("Vert.x must be built with GuardedTransport.epoll():"
                    + " the listener needs its AcceptGuard to survive running out of fds"));
        }
        service.metrics().registerConnectionRefusals(ErrorCode.QUOTA_EXCEEDED.code);
        ((GuardedTransport.Spi) ((VertxInternal) vertx).transport()).refusals(this::refused);
        return Future.succeededFuture();
    }

    /**
     * Binds {@code path} with {@code mode} and, if given, {@code group}, atomically: the socket is bound inside a
     * private (0700) staging directory beside {@code path}, given its mode and group there, and renamed into place,
     * so no client ever finds it at {@code path} with other permissions (libvirt's unix_sock_group and
     * unix_sock_rw_perms, without the window between bind and chmod).
     */
    public Future<Void> listen(Path path, Set<PosixFilePermission> mode, GroupPrincipal group) {
        // connections refused at accept are counted and audited; the series and the reporting code exist before
        // the first one, since the fd-shortage path must not load classes
        Future<Void> ready = checkTransport();
        if (ready.failed()) return ready;
        this.socketPath = path;
        Path staging;
        try {
            staging = Files.createTempDirectory(path.toAbsolutePath().getParent(), "." + path.getFileName() + ".");
        } catch (IOException e) {
            return Future.failedFuture(e);
        }
        Path bound = staging.resolve("s");
        server = vertx.createNetServer().connectHandler(this::accept);
        return server.listen(SocketAddress.domainSocketAddress(bound.toString())).<Void>compose(s -> {
            try {
                Files.setPosixFilePermissions(bound, mode);
                if (group != null) Files.getFileAttributeView(bound, PosixFileAttributeView.class).setGroup(group);
                Files.move(bound, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                return Future.succeededFuture();
            } catch (IOException e) {
                return Future.failedFuture(e);
            }
        }).andThen(ar -> {
            try {
                Files.deleteIfExists(bound);
                Files.deleteIfExists(staging);
            } catch (IOException e) {
                log.warn("cannot remove the staging directory {}: {}", staging, e.getMessage());
            }
        });
    }

    public Path socketPath() {
        return socketPath;
    }

    private void accept(NetSocket so) {
        PeerCredentials peer;
        try {
            peer = EpollChannels.peerCredentials(so);
        } catch (PosixException e) {
            so.close();
            return;
        }
        Policy.Limits limits = service.policy().limits();
        UserAccounts.Account account = service.accounts().of(peer.uid());
        if (!account.tryOpenConnection(limits.maxConnectionsPerUid())) {
            RpcException why = RpcException.limit("max_connections_per_uid", limits.maxConnectionsPerUid(),
                    "too many connections: uid " + peer.uid() + " already has " + limits.maxConnectionsPerUid()
                            + " open (max_connections_per_uid)");
            refused(peer, "max_connections_per_uid", why.code().code, why.getMessage());
            refuse(so, why);
            return;
        }
        FdWriter writer = new FdWriter(vertx, so).maxQueuedBytes(limits.maxOutputBytesPerClient());
        Session session = new Session(service, vertx, so, writer, peer, account);
        service.sessions().add(session);
        so.closeHandler(v -> session.end());
        so.exceptionHandler(t -> so.close());
        session.greet();
        LineFramer[] framer = new LineFramer[1];
        Dispatcher dispatcher = new Dispatcher(session, new Dispatcher.Input() {
            @Override
            public void pause() {
                so.pause();
                framer[0].pause();
            }

            @Override
            public void resume() {
                so.resume();
                framer[0].resume();
            }
        });
        session.dispatcher(dispatcher);
        framer[0] = new LineFramer(service.maxLineBytes(), dispatcher::handleLine, dispatcher::lineTooLong);
        so.handler(framer[0]);
    }

    /** A connection refused at accept, here or by the {@link AcceptGuard}: counted by code and limit, and audited. */
    private void refused(PeerCredentials peer, String limit, int code, String message) {
        service.metrics().connectionRefused(code, limit);
        service.audit().refusedConnection(Who.of(peer.pid(), peer.uid(), peer.gid()), limit, code, message);
    }

    /** Answers a connection the daemon will not serve with one error line, then closes it. */
    private static void refuse(NetSocket so, RpcException why) {
        so.write(Session.line(Wire.error(null, why))).onComplete(ar -> so.close());
    }

    /** Stops accepting and closes every connection (their sessions end). Netty removes the socket file. */
    public Future<Void> close() {
        if (server == null) return Future.succeededFuture();
        return server.close();
    }
}

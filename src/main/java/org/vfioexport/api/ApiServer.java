package org.vfioexport.api;

import io.netty.channel.Channel;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The protocol's listener: a Vert.x NetServer on a Unix domain socket, on the native epoll transport (needed for
 * fd passing and peer credentials). Each accepted connection becomes a {@link Session}. The listening socket's
 * pipeline starts with an {@link AcceptGuard} (installed by {@link GuardedTransport}), which answers and closes
 * connections it cannot accept for want of fds and keeps the listener going.
 */
public final class ApiServer {
    private final Vertx vertx;
    private final Service service;
    private NetServer server;
    private Path socketPath;

    public ApiServer(Vertx vertx, Service service) {
        this.vertx = vertx;
        this.service = service;
    }

    /** Binds {@code path} (which must not exist) and sets its mode to 0660. */
    public Future<Void> listen(Path path) {
        if (!vertx.isNativeTransportEnabled()) {
            return Future.failedFuture(new IllegalStateException("the native epoll transport is not available ("
                    + vertx.unavailableNativeTransportCause() + "); fd passing needs it"));
        }
        if (!GuardedTransport.guards(((VertxInternal) vertx).transport())) {
            return Future.failedFuture(new IllegalStateException("Vert.x must be built with GuardedTransport.epoll():"
                    + " the listener needs its AcceptGuard to survive running out of fds"));
        }
        this.socketPath = path;
        server = vertx.createNetServer().connectHandler(this::accept);
        return server.listen(SocketAddress.domainSocketAddress(path.toString())).compose(s -> {
            try {
                Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-rw----"));
                return Future.succeededFuture();
            } catch (IOException e) {
                return Future.failedFuture(e);
            }
        });
    }

    public Path socketPath() {
        return socketPath;
    }

    private void accept(NetSocket so) {
        Channel ch = ((NetSocketInternal) so).channelHandlerContext().channel();
        Posix.PeerCred peer;
        try {
            peer = Posix.peerCred(((EpollDomainSocketChannel) ch).fd().intValue());
        } catch (PosixException e) {
            so.close();
            return;
        }
        Policy.Limits limits = service.policy().limits();
        UserAccounts.Account account = service.accounts().of(peer.uid());
        if (!account.tryOpenConnection(limits.maxConnectionsPerUid())) {
            refuse(so, RpcException.limit("max_connections_per_uid", limits.maxConnectionsPerUid(),
                    "too many connections: uid " + peer.uid() + " already has " + limits.maxConnectionsPerUid()
                            + " open (max_connections_per_uid)"));
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

package org.vfioexport.api;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.DatagramChannel;
import io.vertx.core.datagram.DatagramSocketOptions;
import io.vertx.core.net.ClientOptionsBase;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.transport.Transport;
import org.vfioexport.ffm.posix.UnixSocket;

import java.util.concurrent.ThreadFactory;

/**
 * Vert.x's epoll transport with an {@link AcceptGuard} first in the pipeline of every Unix-domain listening socket.
 * The daemon builds its Vert.x with it ({@code Vertx.builder().withTransport(GuardedTransport.epoll())}).
 *
 * <p>Why a transport: Vert.x 5 creates the listening channel inside {@code NetServerImpl} and exposes neither the
 * channel nor its bootstrap (the bound channel sits in a private field). Its one public hook into that set-up is
 * the transport SPI: {@code NetServerImpl.bind} passes the {@code ServerBootstrap} it is about to bind to
 * {@link io.vertx.core.spi.transport.Transport#configure(NetServerOptions, boolean, ServerBootstrap)}. A
 * {@code ServerBootstrap.handler} set there is added to the listening channel's pipeline when it registers, ahead
 * of Netty's {@code ServerBootstrapAcceptor} and before the socket is bound, so no accept error can ever take the
 * default path. The other ways in were worse: reading the channel out of {@code NetServerImpl} by reflection
 * breaks silently on an upgrade and leaves a window between bind and the handler; adding it at the first accepted
 * connection ({@code channel.parent()}) misses a shortage before it.
 *
 * <p>The same SPI makes socket activation possible: {@code serverChannelFactory} is where Vert.x gets its listening
 * channel, and Netty's {@code EpollServerDomainSocketChannel(int fd, boolean active)} wraps a socket created
 * elsewhere; {@link InheritedBind} answers the bootstrap's bind for it.
 *
 * <p>The implementation forwards every method of the SPI to the epoll one (a test checks that none is left to an
 * interface default) and only adds the handler in {@code configure}.
 */
public final class GuardedTransport implements Transport {
    private final Transport epoll;
    private final Spi implementation;

    private GuardedTransport(Transport epoll) {
        this.epoll = epoll;
        this.implementation = new Spi(epoll.implementation());
    }

    /**
     * The guarded epoll transport; when the epoll classes are missing, Vert.x's NIO transport, which the daemon
     * then refuses at start-up (fd passing needs epoll).
     */
    public static Transport epoll() {
        return Transport.EPOLL == null ? Transport.NIO : new GuardedTransport(Transport.EPOLL);
    }

    @Override
    public String name() {
        return epoll.name();
    }

    @Override
    public boolean available() {
        return epoll.available();
    }

    @Override
    public Throwable unavailabilityCause() {
        return epoll.unavailabilityCause();
    }

    @Override
    public io.vertx.core.spi.transport.Transport implementation() {
        return implementation;
    }

    /** Whether {@code transport} (as Vert.x holds it) adds the guard. */
    public static boolean guards(io.vertx.core.spi.transport.Transport transport) {
        return transport instanceof Spi;
    }

    /**
     * Completes the bind of an inherited socket without calling bind(2)/listen(2): it is bound and listening
     * already. The channel's own address field stays unset, so Netty's close does not delete the socket file
     * (EpollServerDomainSocketChannel.doClose deletes only the path its doBind bound); systemd owns it.
     */
    static final class InheritedBind extends ChannelOutboundHandlerAdapter {
        @Override
        public void bind(ChannelHandlerContext ctx, java.net.SocketAddress local, ChannelPromise promise) {
            promise.setSuccess();
        }
    }

    /** The SPI side: the epoll implementation, plus the guard on Unix-domain listeners. */
    @SuppressWarnings("deprecation") // the SPI still names Netty's InternetProtocolFamily
    static final class Spi implements io.vertx.core.spi.transport.Transport {
        private final io.vertx.core.spi.transport.Transport d;
        /** Where this transport's guards report turned-away connections (the daemon's metrics and audit). */
        private volatile AcceptGuard.Refusals refusals = AcceptGuard.Refusals.NONE;
        /** An inherited listening socket to serve on instead of creating one, or null. */
        private volatile UnixSocket inherited;

        Spi(io.vertx.core.spi.transport.Transport delegate) {
            this.d = delegate;
        }

        @Override
        public void configure(NetServerOptions options, boolean domainSocket, ServerBootstrap bootstrap) {
            d.configure(options, domainSocket, bootstrap);
            if (domainSocket) bootstrap.handler(new AcceptGuard(() -> refusals));
        }

        void refusals(AcceptGuard.Refusals r) {
            refusals = r;
        }

        @Override
        public boolean supportsDomainSockets() {
            return d.supportsDomainSockets();
        }

        @Override
        public boolean supportFileRegion() {
            return d.supportFileRegion();
        }

        @Override
        public boolean isAvailable() {
            return d.isAvailable();
        }

        @Override
        public Throwable unavailabilityCause() {
            return d.unavailabilityCause();
        }

        @Override
        public java.net.SocketAddress convert(SocketAddress address) {
            return d.convert(address);
        }

        @Override
        public SocketAddress convert(java.net.SocketAddress address) {
            return d.convert(address);
        }

        @Override
        public IoHandlerFactory ioHandlerFactory() {
            return d.ioHandlerFactory();
        }

        @Override
        public EventLoopGroup eventLoopGroup(int type, int nThreads, ThreadFactory threadFactory, int ioRatio) {
            return d.eventLoopGroup(type, nThreads, threadFactory, ioRatio);
        }

        @Override
        public DatagramChannel datagramChannel() {
            return d.datagramChannel();
        }

        @Override
        public DatagramChannel datagramChannel(io.netty.channel.socket.InternetProtocolFamily family) {
            return d.datagramChannel(family);
        }

        @Override
        public ChannelFactory<? extends Channel> channelFactory(boolean domainSocket) {
            return d.channelFactory(domainSocket);
        }

        @Override
        public ChannelFactory<? extends ServerChannel> serverChannelFactory(boolean domainSocket) {
            UnixSocket socket = inherited;
            if (!domainSocket || socket == null) return d.serverChannelFactory(domainSocket);
            return () -> {
                // Netty's own constructor for a socket created elsewhere: active, so it reads (accepts) as soon
                // as it registers; EpollServerDomainSocketChannel is final, so the bind the bootstrap still
                // issues is answered in the pipeline instead of in an overridden doBind
                ServerChannel ch = EpollChannels.serverChannelOn(socket);
                ch.pipeline().addLast(new InheritedBind());
                return ch;
            };
        }

        /** The next Unix-domain listener is the already listening {@code socket} (socket activation). */
        void inherit(UnixSocket socket) {
            inherited = socket;
        }

        @Override
        public void configure(DatagramChannel channel, DatagramSocketOptions options) {
            d.configure(channel, options);
        }

        @Override
        public void configure(ClientOptionsBase options, int connectTimeout, boolean domainSocket, Bootstrap bootstrap) {
            d.configure(options, connectTimeout, domainSocket, bootstrap);
        }
    }
}

package org.vfioexport.api;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.UnixChannel;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.NetSocket;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PeerCredentials;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.UnixSocket;

/**
 * Where the daemon reaches under Netty's epoll transport, in one place: the fd a channel owns, seen as a borrowed
 * {@link UnixSocket} (Netty keeps ownership and closes it), the channel's outbound buffer ({@code unsafe()}), and
 * a server channel made on an inherited socket. Everything else in {@code api} works with {@link FdSink},
 * {@link UnixSocket} and {@link PeerCredentials}; an fd number crosses between Netty and {@code ffm} only here.
 */
final class EpollChannels {
    private EpollChannels() {}

    /** The Netty channel under a Vert.x socket. */
    private static Channel channelOf(NetSocket so) {
        return ((NetSocketInternal) so).channelHandlerContext().channel();
    }

    /** The connection's socket, borrowed from its channel; fd passing needs the epoll transport. */
    private static UnixSocket socketOf(Channel ch) {
        if (!(ch instanceof EpollDomainSocketChannel ep)) {
            throw new IllegalStateException("fd passing needs the native epoll transport, got " + ch.getClass().getName());
        }
        return UnixSocket.borrowSocket(ep.fd().intValue());
    }

    /** The credentials of the peer of an accepted connection. */
    static PeerCredentials peerCredentials(NetSocket so) throws PosixException {
        return socketOf(channelOf(so)).peerCredentials();
    }

    /** The listening socket of a Unix-domain server channel, borrowed (the channel closes it). */
    static UnixSocket listeningSocket(Channel serverChannel) {
        return UnixSocket.borrowSocket(((UnixChannel) serverChannel).fd().intValue());
    }

    /**
     * A server channel on {@code inherited}, a socket bound and listening already (socket activation): Netty's own
     * constructor for a socket created elsewhere, active, so it accepts as soon as it registers. The channel owns
     * the number from then on.
     */
    static ServerChannel serverChannelOn(UnixSocket inherited) {
        return new EpollServerDomainSocketChannel(inherited.intValue(), true);
    }

    /** The connection under {@code so} as an {@link FdSink}. */
    static FdSink sink(NetSocket so) {
        Channel ch = channelOf(so);
        return new Sink(ch, socketOf(ch));
    }

    private static final class Sink implements FdSink {
        private final Channel channel;
        private final UnixSocket socket;

        Sink(Channel channel, UnixSocket socket) {
            this.channel = channel;
            this.socket = socket;
        }

        @Override
        public long sendWithFds(byte[] line, Fd[] fds) throws PosixException {
            return socket.sendWithFds(line, 0, line.length, true, fds);
        }

        @Override
        public int unreadByPeer() throws PosixException {
            return socket.unreadByPeer();
        }

        @Override
        public boolean isOpen() {
            return channel.unsafe().outboundBuffer() != null;
        }

        @Override
        public void flush() {
            // Vert.x defers flushes while it handles a read batch; unflushed writes would be invisible to the buffer
            channel.flush();
        }

        @Override
        public boolean transportEmpty() {
            ChannelOutboundBuffer ob = channel.unsafe().outboundBuffer();
            return ob == null || ob.isEmpty();
        }

        @Override
        public long transportPendingBytes() {
            ChannelOutboundBuffer ob = channel.unsafe().outboundBuffer();
            return ob == null ? 0 : ob.totalPendingWriteBytes();
        }

        @Override
        public boolean shutdownOutput() {
            if (!(channel instanceof EpollDomainSocketChannel ep) || !ep.isActive()) return false;
            ep.shutdownOutput();
            return true;
        }
    }
}

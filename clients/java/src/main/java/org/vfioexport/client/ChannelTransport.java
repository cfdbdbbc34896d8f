package org.vfioexport.client;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.UnixSocket;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayDeque;

/**
 * A socket driven through the JDK's {@link SocketChannel}: no foreign calls, so it costs a command-line call none
 * of the start-up of the foreign-function linker, but the JDK cannot take SCM_RIGHTS, so fds the server sends
 * are dropped by the kernel at the read (the export they belong to stays the connection's all the same).
 */
final class ChannelTransport implements Transport {
    private final SocketChannel channel;
    private final Selector selector;
    private final SelectionKey key;

    private ChannelTransport(SocketChannel channel) throws IOException {
        this.channel = channel;
        channel.configureBlocking(false);
        selector = Selector.open();
        key = channel.register(selector, SelectionKey.OP_READ);
    }

    static ChannelTransport connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return new ChannelTransport(ch);
        } catch (IOException e) {
            ch.close();
            throw new ConnectFailedException(socket, errnoOf(e, socket), e);
        }
    }

    /** The errno behind a failed connect, which the JDK reports only as strerror text. */
    private static int errnoOf(IOException e, Path socket) {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) return Errno.ENOENT.value;
        if (e instanceof java.net.ConnectException) return Errno.ECONNREFUSED.value;
        String m = String.valueOf(e.getMessage());
        if (m.contains("Permission denied")) return Errno.EACCES.value;
        if (m.contains("No such file")) return Errno.ENOENT.value;
        return 0;
    }

    @Override
    public int receive(byte[] into, ArrayDeque<Fd> fds) throws IOException {
        int n = channel.read(ByteBuffer.wrap(into));
        return n < 0 ? 0 : n == 0 ? -1 : n;
    }

    @Override
    public int send(byte[] data, int off, int len) throws IOException {
        try {
            return channel.write(ByteBuffer.wrap(data, off, len));
        } catch (IOException e) {
            throw new IOException("send failed: " + e.getMessage(), e);
        }
    }

    @Override
    public boolean await(boolean write, long ms) throws IOException {
        key.interestOps(write ? SelectionKey.OP_WRITE : SelectionKey.OP_READ);
        int n = selector.select(Math.max(1, ms));
        selector.selectedKeys().clear();
        return n > 0;
    }

    @Override
    public boolean passesFds() {
        return false;
    }

    @Override
    public UnixSocket socket() {
        return null;
    }

    @Override
    public void close() {
        try {
            selector.close();
            channel.close();
        } catch (IOException ignored) {
            // closing is all we can do with it
        }
    }
}

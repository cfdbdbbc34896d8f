package org.vfioexport.ffm.posix;

import java.nio.file.Path;

/**
 * An AF_UNIX stream socket: an {@link Fd} that sends and receives bytes with fds riding on them (SCM_RIGHTS) and
 * knows its peer. Fds go out as {@link Fd} objects (the kernel takes its own reference; the sender still owns and
 * closes them) and come in as new {@link Fd}s the receiver owns. {@code EAGAIN} is not an error here: a send that
 * would block says so in its result.
 */
public final class UnixSocket extends Fd {
    /** SCM_MAX_FD: the most fds one sendmsg can carry. */
    public static final int MAX_FDS_PER_MESSAGE = 253;
    public static final short POLLIN = 1, POLLOUT = 4, POLLERR = 8, POLLHUP = 16;

    private static final Fd[] NO_FDS = new Fd[0];

    private UnixSocket(int fd, boolean owned) {
        super(fd, owned ? CLOSE : null);
    }

    /** A connected socket to {@code path} (blocking, close-on-exec); a leading {@code @} names an abstract socket. */
    public static UnixSocket connect(Path path) throws PosixException {
        return new UnixSocket(Libc.connectUnix(path.toString()), true);
    }

    /** Two connected sockets (close-on-exec), the ends of one stream. */
    public static UnixSocket[] pair() throws PosixException {
        int[] sv = Libc.socketpair();
        return new UnixSocket[] {new UnixSocket(sv[0], true), new UnixSocket(sv[1], true)};
    }

    /** Takes ownership of the socket {@code fd} (an inherited one: socket activation). */
    public static UnixSocket adoptSocket(int fd) {
        return new UnixSocket(fd, true);
    }

    /** A view of a socket owned elsewhere (a Netty channel's): closing it does not close the number. */
    public static UnixSocket borrowSocket(int fd) {
        return new UnixSocket(fd, false);
    }

    /**
     * One sendmsg(2) of {@code len} bytes of {@code data} from {@code offset}, with {@code fds} as SCM_RIGHTS on the
     * first byte, never blocking when {@code dontWait}. Returns the bytes sent, or -1 when the socket has no room now
     * (EAGAIN) and nothing was sent. A peer gone is a {@link PeerClosedException}; an fd of {@code fds} closed
     * meanwhile, a {@link ClosedFdException}.
     */
    public long sendWithFds(byte[] data, int offset, int len, boolean dontWait, Fd... fds) throws PosixException {
        if (fds.length == 0) return send(data, offset, len, dontWait, new int[0]);
        return sendHolding(data, offset, len, dontWait, fds, 0, new int[fds.length]);
    }

    /** Holds each of {@code fds} open (in turn, recursively) while the message that carries their numbers is sent. */
    private long sendHolding(byte[] data, int offset, int len, boolean dontWait, Fd[] fds, int i, int[] numbers)
            throws PosixException {
        if (i == fds.length) return send(data, offset, len, dontWait, numbers);
        return fds[i].use("sendmsg", n -> {
            numbers[i] = n;
            return sendHolding(data, offset, len, dontWait, fds, i + 1, numbers);
        });
    }

    private long send(byte[] data, int offset, int len, boolean dontWait, int[] numbers) throws PosixException {
        int flags = dontWait ? Libc.MSG_DONTWAIT : 0;
        return use("sendmsg", s -> Libc.sendWithFds(s, data, offset, len, numbers, flags));
    }

    /** {@link #sendWithFds} of bytes alone. */
    public long send(byte[] data, int offset, int len, boolean dontWait) throws PosixException {
        return sendWithFds(data, offset, len, dontWait, NO_FDS);
    }

    /** What one receive returned: the bytes read (0 at end of stream) and the fds that came with them, now owned. */
    public record Received(int length, Fd[] fds) {}

    /**
     * One recvmsg(2) into {@code into} (up to its length) with room for {@code maxFds} fds, received close-on-exec.
     * Fds cut off by a too-small control buffer are lost, so that is an error (EMSGSIZE), never a silent drop.
     */
    public Received recvWithFds(byte[] into, int maxFds) throws PosixException {
        Libc.Received r = use("recvmsg", s -> Libc.recvWithFds(s, into, maxFds));
        Fd[] fds = new Fd[r.fds().length];
        for (int i = 0; i < fds.length; i++) fds[i] = adopt(r.fds()[i]);
        return new Received(r.length(), fds);
    }

    /** The peer's pid, uid, gid and supplementary groups as the kernel recorded them at connect(2). */
    public PeerCredentials peerCredentials() throws PosixException {
        return use("getsockopt(SO_PEERCRED)", Libc::peerCred);
    }

    /**
     * The bytes sent on this socket that the peer has not read yet (SIOCOUTQ). Zero means the peer has received
     * everything sent so far, fds included.
     */
    public int unreadByPeer() throws PosixException {
        return use("ioctl(SIOCOUTQ)", s -> Libc.ioctlInt(s, Libc.SIOCOUTQ, "ioctl(SIOCOUTQ)"));
    }

    /** The bytes waiting in this socket's receive queue (FIONREAD), fds not counted. */
    public int readableBytes() throws PosixException {
        return use("ioctl(FIONREAD)", s -> Libc.ioctlInt(s, Libc.FIONREAD, "ioctl(FIONREAD)"));
    }

    /**
     * Waits until one of {@code events} ({@link #POLLIN}, {@link #POLLOUT}) holds: the events that do, or 0 when
     * {@code timeoutMs} passed first (-1 waits for ever).
     */
    public int poll(short events, int timeoutMs) throws PosixException {
        return use("poll", s -> Libc.poll(s, events, timeoutMs));
    }

    /**
     * accept4(2) of one pending connection on this listening socket, close-on-exec and non-blocking: the new socket,
     * or null when none is pending (EAGAIN). Out of fds is an {@link FdLimitException}.
     */
    public UnixSocket acceptNonBlocking() throws PosixException {
        int fd = use("accept4", s -> Libc.accept4(s, Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK));
        return fd < 0 ? null : new UnixSocket(fd, true);
    }

    /** Whether this is an AF_UNIX stream socket; ENOTSOCK (a PosixException) when it is no socket at all. */
    public boolean isUnixStream() throws PosixException {
        int domain = use("getsockopt(SO_DOMAIN)", s -> Libc.getsockoptInt(s, SO_DOMAIN));
        int type = use("getsockopt(SO_TYPE)", s -> Libc.getsockoptInt(s, SO_TYPE));
        return domain == Libc.AF_UNIX && type == Libc.SOCK_STREAM;
    }

    /** Whether the socket listens (SO_ACCEPTCONN). */
    public boolean isListening() throws PosixException {
        return use("getsockopt(SO_ACCEPTCONN)", s -> Libc.getsockoptInt(s, SO_ACCEPTCONN)) != 0;
    }

    private static final int SO_TYPE = 3, SO_ACCEPTCONN = 30, SO_DOMAIN = 39, SO_SNDBUF = 7, SO_RCVBUF = 8;

    /** Sets the send buffer size (SO_SNDBUF; the kernel doubles it and applies its bounds). */
    public void setSendBufferSize(int bytes) throws PosixException {
        use("setsockopt(SO_SNDBUF)", s -> {
            Libc.setIntSockopt(s, Libc.SOL_SOCKET, SO_SNDBUF, bytes);
            return null;
        });
    }

    /** Sets the receive buffer size (SO_RCVBUF). */
    public void setReceiveBufferSize(int bytes) throws PosixException {
        use("setsockopt(SO_RCVBUF)", s -> {
            Libc.setIntSockopt(s, Libc.SOL_SOCKET, SO_RCVBUF, bytes);
            return null;
        });
    }

    /** The path the socket is bound to, with a leading {@code @} for an abstract name, or "" when unnamed. */
    public String localName() throws PosixException {
        return use("getsockname", Libc::unixSocketName);
    }

    @Override
    public String toString() {
        return "unix socket " + super.toString();
    }
}

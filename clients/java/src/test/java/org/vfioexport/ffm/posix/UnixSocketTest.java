package org.vfioexport.ffm.posix;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link UnixSocket} on real socket pairs: bytes, fds riding on them (SCM_RIGHTS), the peer's credentials. */
class UnixSocketTest {
    @TempDir
    Path dir;

    private final List<Fd> opened = new ArrayList<>();

    @AfterEach
    void closeAll() {
        Fd.closeQuietly(opened);
    }

    private <T extends Fd> T own(T fd) {
        opened.add(fd);
        return fd;
    }

    private UnixSocket[] pair() throws PosixException {
        UnixSocket[] p = UnixSocket.pair();
        own(p[0]);
        own(p[1]);
        return p;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void bytesGoAcrossAPair() throws Exception {
        UnixSocket[] p = pair();
        assertEquals(0, p[1].poll(UnixSocket.POLLIN, 0), "nothing to read yet");
        assertEquals(5, p[0].send(bytes("hello"), 0, 5, false));
        assertTrue((p[1].poll(UnixSocket.POLLIN, 10_000) & UnixSocket.POLLIN) != 0, "readable within 10 s");
        assertEquals(5, p[1].readableBytes());
        byte[] into = new byte[16];
        UnixSocket.Received r = p[1].recvWithFds(into, 4);
        assertEquals(5, r.length());
        assertEquals(0, r.fds().length);
        assertEquals("hello", new String(into, 0, 5, StandardCharsets.UTF_8));
        assertEquals(0, p[0].unreadByPeer(), "the peer read everything");
    }

    @Test
    void fdsRideOnTheFirstByteAndArriveAsNewFdsTheReceiverOwns() throws Exception {
        UnixSocket[] p = pair(), carried = pair();
        String what = FdTest.target(carried[0].intValue());
        assertEquals(3, p[0].sendWithFds(bytes("fd\n"), 0, 3, false, carried[0]));
        assertTrue(p[0].unreadByPeer() > 0, "sent, not read yet");
        byte[] into = new byte[16];
        UnixSocket.Received r = p[1].recvWithFds(into, 4);
        assertEquals(3, r.length());
        assertEquals(1, r.fds().length);
        Fd got = own(r.fds()[0]);
        assertNotEquals(carried[0].intValue(), got.intValue(), "a new number in the receiver");
        assertEquals(what, FdTest.target(got.intValue()), "for the same socket");
        assertTrue(got.isCloseOnExec(), "received close-on-exec");
        carried[0].close(); // the sender's copy; the received one keeps the socket open
        assertTrue(got instanceof Fd);
        UnixSocket gotSocket = own(UnixSocket.adoptSocket(got.dup().intValue()));
        assertEquals(2, gotSocket.send(bytes("ok"), 0, 2, false));
        UnixSocket.Received back = carried[1].recvWithFds(into, 1);
        assertEquals("ok", new String(into, 0, back.length(), StandardCharsets.UTF_8));
    }

    @Test
    void fdsCutOffByATooSmallControlBufferAreAnError() throws Exception {
        UnixSocket[] p = pair(), a = pair(), b = pair();
        // room for one fd is 8 bytes of control data (CMSG_SPACE rounds to 8): two would fit, three do not
        p[0].sendWithFds(bytes("x"), 0, 1, false, a[0], a[1], b[0]);
        PosixException e = assertThrows(PosixException.class, () -> p[1].recvWithFds(new byte[4], 1));
        assertTrue(e.is(Errno.EMSGSIZE), e.getMessage());
    }

    @Test
    void thePeersCredentialsAreThisProcesss() throws Exception {
        UnixSocket[] p = pair();
        PeerCredentials c = p[0].peerCredentials();
        assertEquals(ProcessHandle.current().pid(), c.pid());
        assertEquals((int) (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid"), c.uid());
        assertEquals((int) (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:gid"), c.gid());
        assertTrue(c.inGroup(c.gid()));
    }

    @Test
    void aFullSocketSaysSoInsteadOfFailing() throws Exception {
        UnixSocket[] p = pair();
        p[0].setSendBufferSize(4096);
        p[1].setReceiveBufferSize(4096);
        byte[] chunk = new byte[4096];
        long sent = 0;
        for (int i = 0; i < 10_000; i++) {
            long n = p[0].send(chunk, 0, chunk.length, true);
            if (n < 0) {
                assertTrue(sent > 0, "some bytes went before the socket filled");
                assertEquals(0, p[0].poll(UnixSocket.POLLOUT, 0), "and it is not writable now");
                return;
            }
            sent += n;
        }
        throw new AssertionError("10000 sends of 4 KiB never filled a 4 KiB socket");
    }

    @Test
    void sendingToAClosedPeerIsAPeerClosedException() throws Exception {
        UnixSocket[] p = pair();
        p[1].close();
        PeerClosedException e = assertThrows(PeerClosedException.class, () -> p[0].send(bytes("x"), 0, 1, false));
        assertTrue(e.is(Errno.EPIPE), e.getMessage());
        byte[] into = new byte[4];
        assertEquals(0, p[0].recvWithFds(into, 1).length(), "and reading gives the end of the stream");
    }

    @Test
    void connectingWhereNobodyListensNamesTheErrno() {
        Path missing = dir.resolve("missing.sock");
        PosixException e = assertThrows(PosixException.class, () -> own(UnixSocket.connect(missing)));
        assertTrue(e.is(Errno.ENOENT));
        assertEquals("connect(" + missing + ") failed: ENOENT (errno 2)", e.getMessage());
    }

    @Test
    void typedExceptionsFollowTheErrno() {
        assertTrue(Errno.exception("x", Errno.EBADF.value) instanceof ClosedFdException);
        assertTrue(Errno.exception("x", Errno.EMFILE.value) instanceof FdLimitException);
        assertTrue(Errno.exception("x", Errno.ENFILE.value) instanceof FdLimitException);
        assertTrue(Errno.exception("x", Errno.EPIPE.value) instanceof PeerClosedException);
        assertTrue(Errno.exception("x", Errno.ECONNRESET.value) instanceof PeerClosedException);
        assertEquals(PosixException.class, Errno.exception("x", Errno.EINVAL.value).getClass());
        assertEquals(PosixException.class, Errno.exception("x", 4095).getClass());
        assertArrayEquals(new int[0], new PeerCredentials(1, 2, 3).groups());
    }
}

package org.vfioexport.ffm.posix;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Fd} on real fds (the ends of socket pairs): one owner, closed exactly once, never under a call that uses it.
 * Whether a number is still open is read from {@code /proc/self/fd}, comparing what the link names (the socket's
 * inode), so a number the process reuses meanwhile is not taken for the old one.
 */
class FdTest {
    private final List<Fd> opened = new ArrayList<>();

    @AfterEach
    void closeAll() {
        Fd.closeQuietly(opened);
    }

    private UnixSocket[] pair() throws PosixException {
        UnixSocket[] p = UnixSocket.pair();
        opened.add(p[0]);
        opened.add(p[1]);
        return p;
    }

    /** What {@code /proc/self/fd/<n>} names (e.g. {@code socket:[123]}), or null when the number is not open. */
    static String target(int n) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + n)).toString();
        } catch (IOException e) {
            return Files.exists(Path.of("/proc/self/fd/" + n), LinkOption.NOFOLLOW_LINKS) ? "?" : null;
        }
    }

    /** True when the number {@code n} no longer names {@code what}. */
    static boolean closed(int n, String what) {
        return !what.equals(target(n));
    }

    @Test
    void closeClosesTheNumberOnceAndASecondCloseDoesNothing() throws Exception {
        UnixSocket a = pair()[0];
        int n = a.intValue();
        String what = target(n);
        assertTrue(what.startsWith("socket:"), what);
        assertFalse(a.isClosed());
        assertTrue(a.closeOnce(), "the first close closes");
        assertTrue(a.isClosed());
        assertTrue(closed(n, what), "the number is closed");
        assertFalse(a.closeOnce(), "the second close does nothing");
        a.close(); // and neither does close(), without throwing
    }

    @Test
    void aClosedFdIsRefusedBeforeTheKernelSeesItsNumber() throws Exception {
        UnixSocket a = pair()[0];
        a.close();
        ClosedFdException e = assertThrows(ClosedFdException.class, () -> a.send(new byte[] {1}, 0, 1, true));
        assertEquals(Errno.EBADF.value, e.errno());
        assertTrue(e.getMessage().contains("EBADF (errno 9)"), e.getMessage());
        assertThrows(ClosedFdException.class, a::size);
        assertNull(a.dup(), "a closed fd has nothing to duplicate");
    }

    @Test
    void concurrentClosesCloseExactlyOnce() throws Exception {
        int threads = 4;
        for (int round = 0; round < 200; round++) {
            UnixSocket a = pair()[0];
            String what = target(a.intValue());
            CyclicBarrier start = new CyclicBarrier(threads);
            AtomicInteger firsts = new AtomicInteger();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                ts.add(Thread.ofPlatform().start(() -> {
                    try {
                        start.await(10, TimeUnit.SECONDS);
                        if (a.closeOnce()) firsts.incrementAndGet();
                    } catch (Throwable x) {
                        failed.compareAndSet(null, x);
                    }
                }));
            }
            for (Thread t : ts) {
                t.join(10_000);
                assertFalse(t.isAlive(), "a closing thread hung");
            }
            if (failed.get() != null) throw new AssertionError("round " + round, failed.get());
            assertEquals(1, firsts.get(), "round " + round + ": exactly one close is the first");
            assertTrue(closed(a.intValue(), what), "round " + round + ": the number is closed");
        }
    }

    @Test
    void aCloseDuringACallClosesTheNumberWhenTheCallReturns() throws Exception {
        UnixSocket a = pair()[0];
        int n = a.intValue();
        String what = target(n);
        CountDownLatch inCall = new CountDownLatch(1), release = new CountDownLatch(1);
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread user = Thread.ofPlatform().start(() -> {
            try {
                a.use("test", number -> {
                    inCall.countDown();
                    try {
                        if (!release.await(10, TimeUnit.SECONDS)) throw new AssertionError("never released");
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                    assertEquals(what, target(number), "the number stays open under the call");
                    return null;
                });
            } catch (Throwable t) {
                failed.set(t);
            }
        });
        assertTrue(inCall.await(10, TimeUnit.SECONDS), "the call started");
        assertTrue(a.closeOnce(), "the close is accepted at once");
        assertTrue(a.isClosed(), "and later calls are refused");
        assertEquals(what, target(n), "but the number is not closed under the running call");
        release.countDown();
        user.join(10_000);
        assertFalse(user.isAlive());
        if (failed.get() != null) throw new AssertionError(failed.get());
        assertTrue(closed(n, what), "the call's return closed the number");
    }

    @Test
    void aDuplicateIsANewFdOfTheSameFileWithItsOwnOwner() throws Exception {
        UnixSocket[] p = pair();
        Fd dup = p[0].dup();
        opened.add(dup);
        assertNotEquals(p[0].intValue(), dup.intValue());
        assertEquals(target(p[0].intValue()), target(dup.intValue()), "the same socket");
        assertTrue(dup.isCloseOnExec(), "duplicates are close-on-exec");
        String what = target(dup.intValue());
        p[0].close();
        assertEquals(what, target(dup.intValue()), "closing the original leaves the duplicate open");
        dup.close();
        assertTrue(closed(dup.intValue(), what));
    }

    @Test
    void aBorrowedFdIsNeverClosedByItsView() throws Exception {
        UnixSocket a = pair()[0];
        String what = target(a.intValue());
        Fd view = Fd.borrow(a.intValue());
        assertFalse(view.isOwned());
        view.close();
        assertTrue(view.isClosed(), "the view is closed");
        assertEquals(what, target(a.intValue()), "the number is its owner's to close");
    }

    @Test
    void anAdoptedFdClosesThroughItsOwnCloser() throws Exception {
        UnixSocket a = pair()[0];
        List<Integer> closedNumbers = new ArrayList<>();
        Fd seam = Fd.adopt(a.intValue(), closedNumbers::add);
        seam.close();
        seam.close();
        assertEquals(List.of(a.intValue()), closedNumbers, "closed once, through the closer");
    }

    @Test
    void closeQuietlySkipsNullsAndClosesTheRest() throws Exception {
        UnixSocket[] p = pair();
        String what = target(p[1].intValue());
        Fd.closeQuietly(p[0], null, p[1]);
        assertTrue(p[0].isClosed() && p[1].isClosed());
        assertTrue(closed(p[1].intValue(), what));
    }
}

package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fails the Nth syscall of a whole device life (open two functions of one group, list their regions, PROBE,
 * export and duplicate a dma-buf, toggle memory decoding, reset, close) for every N until the life runs through,
 * on both open paths. After each failure the caller closes what it got; then every fd the fake handed out must
 * be closed, the backend must hold no group, the group node must be free again, and the failure must have
 * reached the caller with its errno. Only a failed close goes unseen (it is logged: the fd is gone anyway).
 */
class LinuxFailNthTest {
    @TempDir
    Path root;

    /** Far more than a life makes (about 60 calls): a sweep that reaches it never ends. */
    private static final int MAX_CALLS = 500;

    /** One device life; everything it opens is closed on the way out, whatever fails. */
    private static void life(LinuxKernel k, FakeVfio fake) throws KernelException {
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            VfioDevice gpu = k.open(LinuxOpenPathsTest.GPU);
            opened.add(gpu);
            VfioDevice audio = k.open(LinuxOpenPathsTest.AUDIO);
            opened.add(audio);
            gpu.info();
            gpu.regions();
            audio.regions();
            gpu.probeDmaBuf();
            DmaBuf b = gpu.exportDmaBuf(DmaBufRequest.get(2, 0, 1 << 20));
            opened.add(b);
            Fd dup = b.dup();
            opened.add(() -> Fd.closeQuietly(dup));   // the copy a client would get over the socket   // the copy a client would get over the socket
            gpu.setMemoryEnabled(false);
            gpu.setMemoryEnabled(true);
            gpu.reset();
            assertTrue(gpu.memoryEnabled(), "memory decoding after the reset");
        } finally {
            for (int i = opened.size() - 1; i >= 0; i--) {
                try {
                    opened.get(i).close();
                } catch (Exception e) {
                    throw new AssertionError("close must not throw", e);
                }
            }
        }
    }

    @ParameterizedTest(name = "cdev path: {0}")
    @ValueSource(booleans = {false, true})
    void everyFailureLeavesNothingOpen(boolean cdev) throws Exception {
        FakeVfio fake = new FakeVfio(root, cdev, false, LinuxOpenPathsTest.machine());
        LinuxKernel k = new LinuxKernel(fake, fake.dev(), fake.sysBusPci(), null);
        int failures = 0;
        for (int n = 1; ; n++) {
            assertTrue(n < MAX_CALLS, "the life never ran through");
            fake.failNth(n, Errno.ENOMEM.value);
            KernelException failed = null;
            try {
                life(k, fake);
            } catch (KernelException e) {
                failed = e;
            }
            String call = fake.failedCall();
            fake.noFailure();
            String at = "failing call " + n + " (" + call + ")";
            assertEquals(Set.of(), fake.openFds().keySet(), at + " left fds open: " + fake.openFds());
            assertEquals(Set.of(), k.openGroups(), at + " left a group open in the backend");
            for (int g : new int[] {1, 2}) assertTrue(fake.groupReleased(g), at + " left group " + g + " alive");
            if (call == null) {
                if (failed != null) throw new AssertionError("the life failed with no failure injected", failed);
                assertTrue(failures > 20, "only " + failures + " calls failed: the sweep did not cover the life");
                return;
            }
            if (failed != null) {
                failures++;
                assertEquals(Errno.ENOMEM.name(), failed.errnoName(), at + ": " + failed.getMessage());
            } else {
                assertEquals("close", call, at + ": the failure was swallowed");
            }
        }
    }
}

package org.vfioexport.kernel.sim;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.Fds;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/** Scenarios T1-T8 of docs/kernel-semantics.md §10, on the simulated kernel itself. */
class SimLifecycleTest {
    private static final long PG = 4096;
    private SimKernel kernel;

    private SimDevice open(SimSemantics sem, String id) throws KernelException {
        kernel = Conf.defaultSim(sem);
        kernel.open(id);
        return kernel.device(id);
    }

    @AfterEach
    void close() {
        if (kernel != null) kernel.close();
    }

    private static DmaBuf export(VfioDevice d) throws KernelException {
        return d.exportDmaBuf(DmaBufRequest.get(2, 0, 2 * PG));
    }

    private void drain() throws InterruptedException {
        assertTrue(kernel.deferred().drain(10_000), "deferred releases did not finish within 10 s");
    }

    private static void runOnOtherThread(Runnable r) {
        Thread t = new Thread(r, "concurrent-release");
        t.start();
        try {
            t.join(10_000);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertFalse(t.isAlive(), "the concurrent release blocked: it must not need memory_lock");
    }

    @Test
    @DisplayName("T1 no release in progress: get_file_active succeeds, the revoke notifies, the final fput defers the release")
    void t1() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        DmaBuf buf = export(d);
        SimDmaBuf k = SimKernel.kernelObject(buf);
        AtomicReference<SimDmaBuf.Phase> phaseInHook = new AtomicReference<>();
        // the owner closes its fd while the revoke holds the temporary reference: the move's fput is the last
        d.afterGetFileActive(b -> {
            runOnOtherThread(buf::close);
            phaseInHook.set(b.phase());
        });
        d.setMemoryEnabled(false);
        d.afterGetFileActive(null);
        assertEquals(SimDmaBuf.Phase.ACTIVE, phaseInHook.get(), "the temporary reference kept the file alive");
        MoveTrace revoke = d.traces().getLast();
        assertEquals(List.of(k.inode()), revoke.notified(), "the revoke reached the buffer");
        assertTrue(k.revoked());
        drain();
        assertEquals(SimDmaBuf.Phase.RELEASED, k.phase(), "the deferred release ran after memory_lock was dropped");
        assertTrue(d.listed().isEmpty());
        assertEquals(0, d.registrations());
    }

    @Test
    @DisplayName("T2 release begun but not at memory_lock: get_file_active fails, the entry is skipped, nobody is notified")
    void t2() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        DmaBuf buf = export(d);
        SimDmaBuf k = SimKernel.kernelObject(buf);
        kernel.deferred().hold();
        buf.close();                                        // refcount 0: release queued, held before memory_lock
        assertEquals(SimDmaBuf.Phase.RELEASING, k.phase());
        assertEquals(List.of(k), d.listed(), "still on the list");
        d.setMemoryEnabled(false);
        MoveTrace t = d.traces().getLast();
        assertEquals(List.of(k.inode()), t.skipped());
        assertTrue(t.notified().isEmpty());
        assertFalse(k.revoked(), "a buffer being released is not revoked");
        kernel.deferred().release();
        drain();
        assertTrue(d.listed().isEmpty());
        assertEquals(0, d.registrations());
    }

    @Test
    @DisplayName("T3 release past memory_lock: the entry is gone from the list, so no try-get happens")
    void t3() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        export(d).close();
        drain();
        d.reset();
        MoveTrace revoke = d.traces().get(d.traces().size() - 2);
        assertEquals(0, revoke.listed());
        assertTrue(revoke.skipped().isEmpty() && revoke.notified().isEmpty());
    }

    @Test
    @DisplayName("T4 export with memory off: fd valid, attach ENODEV; memory on: live")
    void t4() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        d.setMemoryEnabled(false);
        try (DmaBuf buf = export(d)) {
            SimDmaBuf k = SimKernel.kernelObject(buf);
            assertTrue(Fds.isOpen(buf.fd()));
            assertTrue(k.revoked());
            assertEquals(Errno.ENODEV.value, assertThrows(KernelException.class, () -> k.attach(true, a -> {})).errno());
            d.setMemoryEnabled(true);
            assertFalse(k.revoked());
            SimAttachment a = k.attach(true, x -> {});
            a.map();
            a.detach();
            assertEquals(Errno.EOPNOTSUPP.value, assertThrows(KernelException.class, () -> k.attach(false, x -> {})).errno(),
                    "importers that cannot do peer-to-peer are refused");
        }
    }

    @Test
    @DisplayName("T5 revoke twice: one notification")
    void t5() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        try (DmaBuf buf = export(d)) {
            SimAttachment a = SimKernel.kernelObject(buf).attach(true, x -> {});
            d.setMemoryEnabled(false);
            d.setMemoryEnabled(false);
            d.reset();                                     // revokes again while revoked, restores nothing: memory off
            assertEquals(1, a.invalidations());
            assertEquals(Errno.ENODEV.value, assertThrows(KernelException.class, a::map).errno());
            a.detach();
        }
    }

    @Test
    @DisplayName("T6 VFIO_DEVICE_RESET failing with EAGAIN (and ENOTTY) still revokes and restores")
    void t6() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        try (DmaBuf buf = export(d)) {
            SimDmaBuf k = SimKernel.kernelObject(buf);
            SimAttachment a = k.attach(true, x -> {});
            kernel.faults().failNth("reset.try_reset", 1, Errno.EAGAIN.value);
            assertEquals(Errno.EAGAIN.value, assertThrows(KernelException.class, d::reset).errno());
            assertEquals(2, a.invalidations(), "revoke and restore both notified");
            assertFalse(k.revoked());
            kernel.faults().failNth("reset.try_reset", 1, Errno.ENOTTY.value);
            assertEquals(Errno.ENOTTY.value, assertThrows(KernelException.class, d::reset).errno());
            assertEquals(4, a.invalidations());
            a.map();
            a.detach();
        }
    }

    @Test
    @DisplayName("a device without a reset method answers EINVAL before anything happens")
    void resetWithoutMethod() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, GPU);
        try (DmaBuf buf = d.exportDmaBuf(DmaBufRequest.get(2, 0, PG))) {
            SimAttachment a = SimKernel.kernelObject(buf).attach(true, x -> {});
            int traces = d.traces().size();
            assertEquals(Errno.EINVAL.value, assertThrows(KernelException.class, d::reset).errno());
            assertEquals(0, a.invalidations());
            assertEquals(traces, d.traces().size(), "no revoke pass ran");
            a.detach();
        }
    }

    @Test
    @DisplayName("T7 device close with live buffers: detached for good, fd still open and described, map ENODEV")
    void t7() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        DmaBuf buf = export(d);
        SimDmaBuf k = SimKernel.kernelObject(buf);
        SimAttachment a = k.attach(true, x -> {});
        a.map();
        d.close();
        assertTrue(k.detached());
        assertEquals(1, a.invalidations());
        assertTrue(Fds.isOpen(buf.fd()));
        assertTrue(Files.exists(Path.of("/proc/self/fdinfo/" + buf.fd())), "fdinfo still shows it");
        assertEquals(2 * PG, Posix.lseek(buf.fd(), 0, Posix.SEEK_END));
        assertEquals(Errno.ENODEV.value, assertThrows(KernelException.class, a::map).errno());
        assertEquals(0, d.registrations());
        a.detach();
        buf.close();
        drain();
        assertEquals(SimDmaBuf.Phase.RELEASED, k.phase());
        assertEquals(0, d.registrations(), "release after cleanup does not drop the registration twice");
        assertEquals(Errno.EBADF.value, assertThrows(KernelException.class, () -> export(d)).errno());
    }

    @Test
    @DisplayName("T8 (7.1) memory off, then close: no double drain, no refcount underflow")
    void t8() throws Exception {
        SimDevice d = open(SimSemantics.V7_1, NVME);
        DmaBuf buf = export(d);
        SimDmaBuf k = SimKernel.kernelObject(buf);
        SimAttachment a = k.attach(true, x -> {});
        d.setMemoryEnabled(false);
        d.close();
        assertEquals(1, a.invalidations(), "the close drain found the buffer already revoked");
        assertEquals(0, d.registrations());
        a.detach();
        buf.close();
        drain();
        assertEquals(SimDmaBuf.Phase.RELEASED, k.phase());
    }

    @Test
    @DisplayName("7.1: a revoke waits until every importer has unmapped; 6.19 does not")
    void revokeWaitsForUnmapOn71() throws Exception {
        for (SimSemantics sem : SimSemantics.values()) {
            SimDevice d = open(sem, NVME);
            try (DmaBuf buf = export(d)) {
                SimAttachment a = SimKernel.kernelObject(buf).attach(true,
                        x -> new Thread(() -> { if (x.mapped() > 0) x.unmap(); }, "importer-unmap").start());
                a.map();
                d.setMemoryEnabled(false);
                if (sem == SimSemantics.V7_1) assertEquals(0, a.mapped(), "7.1 revoke returned before the unmap");
                a.detach();
            }
            kernel.close();
        }
        kernel = null;
    }

    @Test
    @DisplayName("opening a device whose try-reset answers EAGAIN fails the open")
    void openAbortsOnEagain() throws Exception {
        kernel = Conf.defaultSim();
        kernel.faults().failNth("open.try_reset", 1, Errno.EAGAIN.value);
        assertEquals(Errno.EAGAIN.value, assertThrows(KernelException.class, () -> kernel.open(NVME)).errno());
        kernel.open(NVME).close();
    }

    @Test
    @DisplayName("an injected failure after the fd was made puts everything back (fd install, EMFILE)")
    void fdInstallFailureCleansUp() throws Exception {
        SimDevice d = open(SimSemantics.V6_19, NVME);
        long fds = Fds.open();
        kernel.faults().failNth("feature.fd_install", 1, Errno.EMFILE.value);
        assertEquals(Errno.EMFILE.value, assertThrows(KernelException.class, () -> export(d)).errno());
        assertEquals(fds, Fds.open());
        assertTrue(d.listed().isEmpty());
        assertEquals(0, d.registrations());
    }
}

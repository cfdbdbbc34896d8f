package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventType;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.sim.SimDmaBuf;
import org.vfioexport.kernel.sim.SimSemantics;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.Fds;
import org.vfioexport.testutil.Wait;

import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.device.DeviceFixture.await;
import static org.vfioexport.device.DeviceFixture.failure;
import static org.vfioexport.device.DeviceFixture.shape;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The device suite: the kernel-semantics scenarios T1–T10 through the device layer, with the try-get rule for
 * releases and the reset's real duration. One body, run by {@link DeviceTest} over each scheduler of the
 * {@link DeviceCore} (message order and the read-write lock), as Vert.x runs one test body on every transport.
 */
abstract class DeviceSuite {
    private static final long PG = 4096;
    private static Vertx vertx;
    DeviceFixture fx;

    /** The scheduler under test. */
    abstract Discipline discipline();

    @BeforeAll
    static void vertx() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void closeVertx() {
        await(vertx.close());
    }

    static Vertx vertxInstance() {
        return vertx;
    }

    @BeforeEach
    void start() {
        fx = new DeviceFixture(vertx, Conf.defaultSim(SimSemantics.V6_19), discipline());
    }

    @AfterEach
    void stop() {
        if (fx != null) fx.close();
    }

    /** Runs {@code r} on a plain thread (off every event loop) and waits for it. */
    private static void offLoop(Runnable r) {
        Thread t = new Thread(r, "client-loop");
        t.start();
        try {
            t.join(DeviceFixture.WAIT_MS);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertFalse(t.isAlive(), "beginning a release blocked");
    }

    @Test
    @DisplayName("T1 a release that begins while a reset holds its reference: revoked, then released within the reset")
    void t1() {
        Export x = fx.export(NVME, 2, 0, PG);
        AtomicReference<Future<Export>> released = new AtomicReference<>();
        fx.core(NVME).afterTryGet = e -> {
            if (e == x && released.get() == null) offLoop(() -> released.set(fx.device(NVME).release(x, Cause.CLIENT)));
        };
        ResetResult r = await(fx.device(NVME).reset());
        fx.core(NVME).afterTryGet = e -> {};
        assertEquals(1, r.revoked());
        assertEquals(0, r.restored(), "an export whose release began is not restored");
        await(released.get());
        // the release takes effect where the pass sees it begun: right after the pass's revoke, never restored
        assertEquals(List.of("export.created:1:client:live", "device.state:reset:resetting", "export.revoked:1:reset",
                "export.released:1:client", "device.state:reset:ready"), shape(fx.eventsOf(NVME)));
        fx.checkInvariants();
    }

    @Test
    @DisplayName("T2 a release begun before the reset reached it: skipped (no revoke) and released there, before any restore")
    void t2() {
        Export x = fx.export(NVME, 2, 0, PG), y = fx.export(NVME, 2, PG, PG);
        int yFd = y.buf().fd();
        AtomicReference<Future<Export>> released = new AtomicReference<>();
        fx.core(NVME).afterTryGet = e -> {
            if (e == x && released.get() == null) offLoop(() -> released.set(fx.device(NVME).release(y, Cause.SESSION_END)));
        };
        ResetResult r = await(fx.device(NVME).reset());
        fx.core(NVME).afterTryGet = e -> {};
        await(released.get());
        assertEquals(1, r.revoked(), "only x was revoked");
        // the failed try-get is where the release takes effect: y is never seen live through the reset
        assertEquals(List.of("export.created:1:client:live", "export.created:2:client:live",
                "device.state:reset:resetting", "export.revoked:1:reset", "export.released:2:session-end",
                "export.restored:1:reset", "device.state:reset:ready"), shape(fx.eventsOf(NVME)));
        assertFalse(Fds.isOpen(yFd), "the final release, after the reset, closed the service's fd");
        fx.checkInvariants();
    }

    @Test
    @DisplayName("T3 a release that completed before the reset: the export is absent, nothing to skip")
    void t3() {
        Export x = fx.export(NVME, 2, 0, PG);
        await(fx.device(NVME).release(x, Cause.CLIENT));
        ResetResult r = await(fx.device(NVME).reset());
        assertEquals(0, r.revoked());
        assertEquals(List.of("export.created:1:client:live", "export.released:1:client",
                "device.state:reset:resetting", "device.state:reset:ready"), shape(fx.eventsOf(NVME)));
    }

    @Test
    @DisplayName("a release closes the service's fd exactly once, and the kernel object is released")
    void releaseClosesTheFd() throws Exception {
        long fds = Fds.open();
        Export x = fx.export(NVME, 2, 0, 4 * PG);
        int fd = x.buf().fd();
        assertTrue(Fds.isOpen(fd));
        assertEquals(4 * PG, x.size());
        await(fx.device(NVME).release(x, Cause.CLIENT));
        assertFalse(Fds.isOpen(fd));
        assertEquals(ExportState.RELEASED, x.state());
        Throwable again = failure(fx.device(NVME).release(x, Cause.CLIENT));
        assertEquals(DeviceException.Kind.NO_SUCH_EXPORT, assertInstanceOf(DeviceException.class, again).kind());
        assertTrue(fx.kernel.deferred().drain(DeviceFixture.WAIT_MS));
        assertTrue(fx.kernel.device(NVME).listed().isEmpty());
        assertEquals(fds, Fds.open());
    }

    @Test
    @DisplayName("T4 memory off: device.state and revokes; an export created then starts revoked; memory on restores")
    void memoryToggle() {
        Export a = fx.export(NVME, 2, 0, PG);
        MemoryResult off = await(fx.device(NVME).setMemory(false));
        assertEquals(1, off.revoked());
        Export b = fx.export(NVME, 2, PG, PG);
        assertEquals(ExportState.REVOKED, b.state());
        assertTrue(SimDmaBufOf(b).revoked(), "the kernel agrees: created revoked");
        MemoryResult on = await(fx.device(NVME).setMemory(true));
        assertEquals(2, on.restored());
        assertEquals(ExportState.LIVE, a.state());
        assertFalse(SimDmaBufOf(a).revoked());
        assertEquals(List.of("export.created:1:client:live", "device.state:memory-disable:memory-disabled",
                "export.revoked:1:memory-disable", "export.created:2:client:revoked", "export.restored:1:memory-enable",
                "export.restored:2:memory-enable", "device.state:memory-enable:ready"), shape(fx.eventsOf(NVME)));
        fx.checkInvariants();
    }

    private SimDmaBuf SimDmaBufOf(Export e) {
        return org.vfioexport.kernel.sim.SimKernel.kernelObject(e.buf());
    }

    @Test
    @DisplayName("T5 memory off twice: one revoke; a reset while memory is off restores nothing")
    void t5() {
        fx.export(NVME, 2, 0, PG);
        await(fx.device(NVME).setMemory(false));
        MemoryResult again = await(fx.device(NVME).setMemory(false));
        assertEquals(0, again.revoked());
        ResetResult r = await(fx.device(NVME).reset());
        assertEquals(0, r.revoked());
        assertEquals(0, r.restored());
        assertEquals(1, fx.count(NVME, EventType.EXPORT_REVOKED));
        assertEquals(List.of("export.created:1:client:live", "device.state:memory-disable:memory-disabled",
                "export.revoked:1:memory-disable", "device.state:reset:resetting",
                "device.state:reset:memory-disabled"), shape(fx.eventsOf(NVME)));
        fx.checkInvariants();
    }

    @Test
    @DisplayName("T6 a reset failing with EAGAIN still revokes and restores; the caller gets EAGAIN")
    void t6() {
        Export x = fx.export(NVME, 2, 0, PG);
        fx.kernel.faults().failNth("reset.try_reset", 1, Errno.EAGAIN.value);
        Throwable t = failure(fx.device(NVME).reset());
        assertEquals(Errno.EAGAIN.value, assertInstanceOf(KernelException.class, t).errno());
        assertEquals(ExportState.LIVE, x.state());
        assertEquals(List.of("export.created:1:client:live", "device.state:reset:resetting", "export.revoked:1:reset",
                "export.restored:1:reset", "device.state:reset:ready"), shape(fx.eventsOf(NVME)));
    }

    @Test
    @DisplayName("a device without a reset method: EINVAL and no event at all")
    void resetWithoutMethod() {
        fx.export(GPU, 2, 0, PG);
        long head = fx.hub.log(GPU).head();
        Throwable t = failure(fx.device(GPU).reset());
        assertEquals(Errno.EINVAL.value, assertInstanceOf(KernelException.class, t).errno());
        assertEquals(head, fx.hub.log(GPU).head());
    }

    @Test
    @DisplayName("a second reset while one holds the device is busy (try-reset), not queued")
    void secondResetIsBusy() {
        fx.export(NVME, 2, 0, PG);
        AtomicReference<Throwable> second = new AtomicReference<>();
        fx.kernel.device(NVME).afterGetFileActive(b -> {
            if (second.get() == null) second.set(failure(fx.device(NVME).reset()));
        });
        await(fx.device(NVME).reset());
        fx.kernel.device(NVME).afterGetFileActive(null);
        assertEquals(DeviceException.Kind.BUSY, assertInstanceOf(DeviceException.class, second.get()).kind());
        await(fx.device(NVME).reset()); // and the device takes resets again afterwards
    }

    @Test
    @DisplayName("exports wait while a reset runs: none is created between resetting and ready")
    void exportsWaitForTheReset() {
        fx.export(NVME, 2, 0, PG);
        AtomicReference<Future<Export>> during = new AtomicReference<>();
        fx.kernel.device(NVME).afterGetFileActive(b -> {
            // the hook runs in the revoke and the restore pass: export once, while the reset is running
            if (during.get() == null) during.set(fx.device(NVME).export(new ExportRequest("t", 2, List.of(new DmaRange(PG, PG)), 0)));
        });
        await(fx.device(NVME).reset());
        fx.kernel.device(NVME).afterGetFileActive(null);
        Export late = await(during.get());
        assertEquals(ExportState.LIVE, late.state());
        assertEquals(List.of("export.created:1:client:live", "device.state:reset:resetting", "export.revoked:1:reset",
                "export.restored:1:reset", "device.state:reset:ready", "export.created:2:client:live"),
                shape(fx.eventsOf(NVME)));
    }

    @Test
    @DisplayName("exports held in the kernel overlap; a reset waits for those in flight and holds back those after it")
    void sharedAndExclusive() throws Exception {
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch aEntered = new java.util.concurrent.CountDownLatch(1);
        long base = fx.kernel.faults().calls();
        // a test holding the kernel call makes it a call that sleeps: the scheduler runs it off the device's loop
        fx.kernel.faults().onStep("feature.dma_buf_export", n -> {
            if (n == 1) {
                aEntered.countDown();
                try {
                    assertTrue(release.await(DeviceFixture.WAIT_MS, java.util.concurrent.TimeUnit.MILLISECONDS));
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            }
        });
        Future<Export> a = fx.device(NVME).export(new ExportRequest("t", 2, List.of(new DmaRange(0, PG)), 0));
        assertTrue(aEntered.await(DeviceFixture.WAIT_MS, java.util.concurrent.TimeUnit.MILLISECONDS));
        Export b = fx.export(NVME, 2, PG, PG);                    // completes while a is still in the kernel
        assertFalse(a.isComplete(), "a is held in the kernel");
        Future<ResetResult> r = fx.device(NVME).reset();
        Wait.untilEquals("the reset waiting for admission behind a", DeviceFixture.WAIT_MS, 1,
                () -> fx.managed(NVME).waitingForAdmission());
        Future<Export> c = fx.device(NVME).export(new ExportRequest("t", 2, List.of(new DmaRange(2 * PG, PG)), 0));
        Wait.untilEquals("c waiting for admission behind the reset", DeviceFixture.WAIT_MS, 2,
                () -> fx.managed(NVME).waitingForAdmission());
        assertFalse(r.isComplete() || c.isComplete(), "the reset waits for a; c waits behind the reset");
        release.countDown();
        await(r);
        await(c);
        fx.kernel.faults().onStep("feature.dma_buf_export", null);
        String aId = await(a).id().substring(NVME.length() + 1), bId = b.id().substring(NVME.length() + 1);
        assertEquals(List.of("export.created:" + bId + ":client:live", "export.created:" + aId + ":client:live",
                "device.state:reset:resetting", "export.revoked:" + bId + ":reset", "export.revoked:" + aId + ":reset",
                "export.restored:" + bId + ":reset", "export.restored:" + aId + ":reset", "device.state:reset:ready",
                "export.created:3:client:live"), shape(fx.eventsOf(NVME)));
        assertTrue(fx.kernel.faults().calls() > base);
    }

    @Test
    @DisplayName("a reset holds its device as long as its reset method does; the device still answers, other devices export")
    void aResetTakesItsTimeWithoutHoldingAnythingElse() throws Exception {
        Export x = fx.export(NVME, 2, 0, PG);
        // 100 ms, as configured (an FLR): the reset's duration is at least the reset method's wait
        ResetResult timed = await(fx.device(NVME).reset());
        assertTrue(timed.durationMicros() >= fx.kernel.device(NVME).spec().resetMillis() * 1000,
                "a reset lasted " + timed.durationMicros() + " us, shorter than its reset method's wait");

        // now hold a reset inside the kernel, where its wait would be, and look at everything else meanwhile
        java.util.concurrent.CountDownLatch inReset = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch finish = new java.util.concurrent.CountDownLatch(1);
        AtomicReference<Boolean> onEventLoop = new AtomicReference<>();
        fx.kernel.faults().onStep("reset.try_reset", n -> {
            onEventLoop.set(io.vertx.core.Context.isOnEventLoopThread());
            inReset.countDown();
            try {
                assertTrue(finish.await(DeviceFixture.WAIT_MS, java.util.concurrent.TimeUnit.MILLISECONDS));
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        });
        Future<ResetResult> r = fx.device(NVME).reset();
        assertTrue(inReset.await(DeviceFixture.WAIT_MS, java.util.concurrent.TimeUnit.MILLISECONDS));
        assertEquals(Boolean.FALSE, onEventLoop.get(), "a reset sleeps: it must not run on an event loop");
        assertEquals(DeviceState.RESETTING, await(fx.device(NVME).describe()).state(), "the device answers during its reset");
        Export other = fx.export(GPU, 2, 0, PG);                     // another device is not held by this reset
        assertEquals(ExportState.LIVE, other.state());
        Future<Export> held = fx.device(NVME).export(new ExportRequest("t", 2, List.of(new DmaRange(PG, PG)), 0));
        Wait.untilEquals("an export of the resetting device waiting for admission", DeviceFixture.WAIT_MS, 1,
                () -> fx.managed(NVME).waitingForAdmission());
        assertFalse(r.isComplete() || held.isComplete(), "the reset holds its device; the export waits for it");
        finish.countDown();
        await(r);
        assertEquals(ExportState.LIVE, await(held).state());
        fx.kernel.faults().onStep("reset.try_reset", null);
        assertEquals(ExportState.LIVE, x.state());
        fx.checkInvariants();
    }

    @Test
    @DisplayName("T7 device close: exports revoked and released (cause device-close), fds closed, device closed")
    void t7() {
        Export x = fx.export(NVME, 2, 0, PG);
        int fd = x.buf().fd();
        await(fx.device(NVME).close(Cause.DEVICE_CLOSE));
        assertFalse(Fds.isOpen(fd));
        assertEquals(List.of("export.created:1:client:live", "export.revoked:1:device-close",
                "export.released:1:device-close", "device.state:device-close:closed"), shape(fx.eventsOf(NVME)));
        Throwable t = failure(fx.device(NVME).export(new ExportRequest("t", 2, List.of(new DmaRange(0, PG)), 0)));
        assertEquals(DeviceException.Kind.UNAVAILABLE, assertInstanceOf(DeviceException.class, t).kind());
        assertEquals(DeviceState.CLOSED, await(fx.device(NVME).describe()).state());
        fx.checkInvariants();
    }

    @Test
    @DisplayName("T8 (7.1) memory off, then device close: one revoke, the export released by the close, nothing left")
    void t8() {
        try (DeviceFixture v71 = new DeviceFixture(vertxInstance(), Conf.defaultSim(SimSemantics.V7_1), discipline())) {
            Export x = v71.export(NVME, 2, 0, PG);
            int fd = x.buf().fd();
            var kernelDevice = v71.kernel.device(NVME);
            await(v71.device(NVME).setMemory(false));
            await(v71.device(NVME).close(Cause.DEVICE_CLOSE));
            assertFalse(Fds.isOpen(fd));
            assertEquals(0, kernelDevice.registrations(), "no registration left, none dropped twice");
            assertEquals(List.of("export.created:1:client:live", "device.state:memory-disable:memory-disabled",
                    "export.revoked:1:memory-disable", "export.released:1:device-close",
                    "device.state:device-close:closed"), shape(v71.eventsOf(NVME)));
            v71.checkInvariants();
        }
    }

    @Test
    @DisplayName("T10 kernel refusals reach the caller as KernelException with the errno, and leave nothing behind")
    void kernelErrors() {
        long fds = Fds.open();
        Throwable empty = failure(fx.device(NVME).export(new ExportRequest("t", 2, List.of(), 0)));
        assertEquals(Errno.EINVAL.value, assertInstanceOf(KernelException.class, empty).errno());
        Throwable wrap = failure(fx.device(NVME).export(new ExportRequest("t", 2, List.of(new DmaRange(-PG, 2 * PG)), 0)));
        assertEquals(Errno.EOVERFLOW.value, assertInstanceOf(KernelException.class, wrap).errno());
        Throwable region = failure(fx.device(NVME).export(new ExportRequest("t", 0xFFFF_FFFFL, List.of(new DmaRange(0, PG)), 0)));
        assertEquals(Errno.ENODEV.value, assertInstanceOf(KernelException.class, region).errno());
        assertEquals(0, fx.hub.log(NVME).head(), "no event for a refused export");
        assertEquals(fds, Fds.open());
    }

    @Test
    @DisplayName("describe: the protocol's DEVICE view")
    void describe() {
        fx.export(NVME, 2, 0, PG);
        DeviceSnapshot s = await(fx.device(NVME).describe());
        assertEquals(NVME, s.device());
        assertEquals("sim", s.backend());
        assertEquals(DeviceState.READY, s.state());
        assertEquals(1, s.exports());
        assertEquals(1, s.seq());
        assertTrue(s.resetSupported());
        assertEquals(64L << 20, s.regions().get(2).size());
        assertFalse(await(fx.device(GPU).describe()).resetSupported());
        assertEquals(null, s.dmabufUnsupported());
    }

    @Test
    @DisplayName("T9 through the service: a device whose driver cannot export still opens, and says why")
    void unsupportedDeviceSaysWhy() {
        var spec = new org.vfioexport.kernel.sim.SimDeviceSpec("0000:05:00.0", "variant", true, true, true,
                List.of(new org.vfioexport.kernel.sim.SimRegionSpec(0, org.vfioexport.kernel.RegionKind.MMIO, 1 << 20, false)));
        try (DeviceFixture variant = new DeviceFixture(vertx, new org.vfioexport.kernel.sim.SimKernel(List.of(spec),
                SimSemantics.V6_19, true), discipline())) {
            DeviceSnapshot s = await(variant.device("0000:05:00.0").describe());
            assertTrue(s.dmabufUnsupported().contains("EOPNOTSUPP"), s.dmabufUnsupported());
            Throwable t = failure(variant.device("0000:05:00.0").export(new ExportRequest("t", 0, List.of(new DmaRange(0, PG)), 0)));
            assertEquals(Errno.EOPNOTSUPP.value, assertInstanceOf(KernelException.class, t).errno());
        }
    }
}

package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.vfioexport.events.Cause;
import org.vfioexport.kernel.sim.SimDevice;
import org.vfioexport.kernel.sim.SimSemantics;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.Fds;

import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.device.DeviceFixture.await;
import static org.vfioexport.device.DeviceFixture.shape;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * Where a release takes effect for the device, under both schedulers: at the latest where an exclusive operation
 * meets it begun, so its {@code export.released} is stamped inside that operation, never after it. Each case
 * begins a release from a plain thread at a chosen point inside the operation, through the simulated kernel's
 * hooks (which run inside {@code VFIO_DEVICE_RESET}, the config write, and the close's cleanup walk).
 * {@code DeviceTest} T1 and T2 cover the points inside the core's own revoke pass.
 */
class ReleaseLinearizationTest {
    private static final long PG = 4096;
    private static Vertx vertx;

    @BeforeAll
    static void vertx() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void closeVertx() {
        await(vertx.close());
    }

    /** Begins {@code x}'s release on a plain thread (off every loop, off the device's worker) and waits for that. */
    private static Future<Export> beginRelease(DeviceFixture fx, Export x) {
        AtomicReference<Future<Export>> f = new AtomicReference<>();
        Thread t = new Thread(() -> f.set(fx.device(x.device()).release(x, Cause.CLIENT)), "client");
        t.start();
        try {
            t.join(DeviceFixture.WAIT_MS);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        assertFalse(t.isAlive(), "beginning a release blocked");
        return f.get();
    }

    @ParameterizedTest
    @EnumSource(Discipline.class)
    void aReleaseBegunDuringTheResetItselfIsReleasedByTheRestorePassNotAfterTheReset(Discipline discipline) {
        try (DeviceFixture fx = new DeviceFixture(vertx, Conf.defaultSim(SimSemantics.V6_19), discipline)) {
            Export x = fx.export(NVME, 2, 0, PG), y = fx.export(NVME, 2, PG, PG);
            int xFd = x.buf().fd();
            AtomicReference<Future<Export>> released = new AtomicReference<>();
            // inside VFIO_DEVICE_RESET: after the service's revoke pass, before its restore pass
            fx.kernel.faults().onStep("reset.ioctl", n -> released.set(beginRelease(fx, x)));
            ResetResult r = await(fx.device(NVME).reset());
            fx.kernel.faults().onStep("reset.ioctl", null);
            assertEquals(2, r.revoked());
            assertEquals(1, r.restored(), "x, being released, is not restored");
            await(released.get());
            assertFalse(Fds.isOpen(xFd));
            // one core under both schedulers: the passes walk the table in creation order, and the stream is the same;
            // x's release takes effect at the restore pass's failed try-get
            assertEquals(List.of("export.created:1:client:live", "export.created:2:client:live",
                    "device.state:reset:resetting", "export.revoked:1:reset", "export.revoked:2:reset",
                    "export.released:1:client", "export.restored:2:reset", "device.state:reset:ready"),
                    shape(fx.eventsOf(NVME)));
            fx.checkInvariants();
            assertEquals(ExportState.LIVE, y.state());
        }
    }

    @ParameterizedTest
    @EnumSource(Discipline.class)
    void aReleaseBegunWhileMemoryTurnsOnIsReleasedBeforeReady(Discipline discipline) {
        try (DeviceFixture fx = new DeviceFixture(vertx, Conf.defaultSim(SimSemantics.V6_19), discipline)) {
            Export x = fx.export(NVME, 2, 0, PG);
            await(fx.device(NVME).setMemory(false));
            AtomicReference<Future<Export>> released = new AtomicReference<>();
            // inside the config write that turns decoding back on, before the restore pass
            fx.kernel.faults().onStep("config.write", n -> released.set(beginRelease(fx, x)));
            MemoryResult on = await(fx.device(NVME).setMemory(true));
            fx.kernel.faults().onStep("config.write", null);
            assertEquals(0, on.restored());
            await(released.get());
            assertEquals(List.of("export.created:1:client:live", "device.state:memory-disable:memory-disabled",
                    "export.revoked:1:memory-disable", "export.released:1:client", "device.state:memory-enable:ready"),
                    shape(fx.eventsOf(NVME)));
            fx.checkInvariants();
        }
    }

    @ParameterizedTest
    @EnumSource(Discipline.class)
    void aReleaseBegunWhileTheDeviceClosesIsReleasedBeforeClosed(Discipline discipline) {
        try (DeviceFixture fx = new DeviceFixture(vertx, Conf.defaultSim(SimSemantics.V6_19), discipline)) {
            Export x = fx.export(NVME, 2, 0, PG);
            int xFd = x.buf().fd();
            AtomicReference<Future<Export>> released = new AtomicReference<>();
            // inside the kernel's close: its cleanup walk, after the service's revoke pass
            SimDevice kernelDevice = fx.kernel.device(NVME);   // the kernel forgets it once closed
            kernelDevice.afterGetFileActive(b -> {
                if (released.get() == null) released.set(beginRelease(fx, x));
            });
            await(fx.device(NVME).close(Cause.DEVICE_CLOSE));
            kernelDevice.afterGetFileActive(null);
            assertTrue(released.get() != null, "the kernel's cleanup walk met the buffer");
            await(released.get());
            assertFalse(Fds.isOpen(xFd));
            // the client's release, begun before the close's own, keeps its cause; closed is the last event
            assertEquals(List.of("export.created:1:client:live", "export.revoked:1:device-close",
                    "export.released:1:client", "device.state:device-close:closed"), shape(fx.eventsOf(NVME)));
            fx.checkInvariants();
            assertEquals(0, fx.devices.liveExports());
        }
    }
}

package org.vfioexport.kernel.sim;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.testutil.Conf;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The simulated reset takes as long as the device's reset method does on hardware (an FLR: {@code pcie_flr}'s
 * 100 ms), with memory_lock held for write throughout; memory toggles and exports stay fast. And the model says
 * which of its calls can sleep, so the device layer knows what must not run on an event loop.
 */
class SimResetTimingTest {
    private static final long PG = 4096;
    private SimKernel kernel;

    @AfterEach
    void close() {
        if (kernel != null) kernel.close();
    }

    private static Map<String, Object> device(Object resetMs, boolean reset) {
        Map<String, Object> m = new HashMap<>(Map.of("id", "0000:07:00.0", "reset", reset,
                "regions", List.of(Map.of("index", 0, "kind", "mmio", "size", 1 << 20))));
        if (resetMs != null) m.put("reset_ms", resetMs);
        return m;
    }

    @Test
    @DisplayName("reset_ms: 100 (an FLR) when absent, as given otherwise, refused when negative, fractional or without a reset method")
    void configuration() {
        assertEquals(100, SimDeviceSpec.fromMap(device(null, true)).resetMillis());
        assertEquals(0, SimDeviceSpec.fromMap(device(0, true)).resetMillis());
        assertEquals(1000, SimDeviceSpec.fromMap(device(1000, true)).resetMillis());
        assertEquals(0, SimDeviceSpec.fromMap(device(null, false)).resetMillis());
        for (Object bad : new Object[] {-1, 1.5, "100"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SimDeviceSpec.fromMap(device(bad, true)));
            assertTrue(e.getMessage().contains("reset_ms"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SimDeviceSpec.fromMap(device(10, false)))
                .getMessage().contains("no reset method"));
    }

    @Test
    @DisplayName("VFIO_DEVICE_RESET lasts at least reset_ms, holding memory_lock: an export waits for it")
    void aResetTakesItsResetMethodsTime() throws Exception {
        kernel = Conf.defaultSim();
        VfioDevice d = kernel.open(NVME);
        assertEquals(100, kernel.device(NVME).spec().resetMillis(), "the configuration's NVMe has an FLR");
        long t0 = System.nanoTime();
        d.reset();
        long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(took >= 100, "the reset took " + took + " ms, less than pcie_flr's 100 ms wait");

        // an export made while the reset sleeps waits for memory_lock: it completes only after the reset
        CountDownLatch resetting = new CountDownLatch(1);
        kernel.faults().onStep("reset.try_reset", n -> resetting.countDown());
        Thread resetter = new Thread(() -> {
            try {
                d.reset();
            } catch (KernelException e) {
                throw new AssertionError(e);
            }
        }, "resetter");
        long r0 = System.nanoTime();
        resetter.start();
        assertTrue(resetting.await(10, TimeUnit.SECONDS));
        try (DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(2, 0, PG))) {
            long waited = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - r0);
            assertTrue(waited >= 100, "an export during the reset returned after " + waited + " ms");
            assertFalse(SimKernel.kernelObject(b).revoked(), "created after the reset restored decoding");
        }
        resetter.join(10_000);
        assertFalse(resetter.isAlive());
    }

    @Test
    @DisplayName("reset_ms 0: resets as fast as the rest; a failed try-reset (EAGAIN) does not wait at all")
    void zeroAndFailedResetsDoNotWait() throws Exception {
        kernel = Conf.defaultSim(SimSemantics.V6_19, 0);
        VfioDevice d = kernel.open(NVME);
        assertEquals(0, kernel.device(NVME).spec().resetMillis());
        d.reset();
        SimKernel slow = Conf.defaultSim(SimSemantics.V6_19, 60_000);
        try {
            VfioDevice s = slow.open(NVME);
            slow.faults().failNth("reset.try_reset", 1, Errno.EAGAIN.value);
            long t0 = System.nanoTime();
            assertEquals(Errno.EAGAIN.value, assertThrows(KernelException.class, s::reset).errno());
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(30), "a try-reset that failed still waited");
        } finally {
            slow.close();
        }
    }

    @Test
    @DisplayName("what can sleep: resets and closes always, memory-off on 7.1 (it waits for importers), anything a test holds")
    void whatCanSleep() throws Exception {
        for (SimSemantics sem : SimSemantics.values()) {
            SimKernel k = Conf.defaultSim(sem);
            try {
                VfioDevice d = k.open(NVME);
                assertTrue(d.maySleep(VfioDevice.Call.RESET));
                assertTrue(d.maySleep(VfioDevice.Call.CLOSE));
                assertFalse(d.maySleep(VfioDevice.Call.EXPORT), "an export only updates the list under memory_lock");
                assertFalse(d.maySleep(VfioDevice.Call.MEMORY_ON), "a restore does not wait for importers");
                assertEquals(sem == SimSemantics.V7_1, d.maySleep(VfioDevice.Call.MEMORY_OFF));
                k.faults().onStep("feature.dma_buf_export", n -> {});
                assertTrue(d.maySleep(VfioDevice.Call.EXPORT), "a test holding the export makes it a call that sleeps");
                k.faults().onStep("feature.dma_buf_export", null);
                k.faults().delayNth("config.write", 1, 1);
                assertTrue(d.maySleep(VfioDevice.Call.MEMORY_ON), "so does a planned delay");
                k.faults().clear();
                k.device(NVME).afterGetFileActive(b -> {});
                assertTrue(d.maySleep(VfioDevice.Call.MEMORY_ON), "and a hook in the revoke/restore walk");
                k.device(NVME).afterGetFileActive(null);
                assertFalse(d.maySleep(VfioDevice.Call.MEMORY_ON));
                assertFalse(k.open(GPU).maySleep(VfioDevice.Call.EXPORT));
            } finally {
                k.close();
            }
        }
    }
}

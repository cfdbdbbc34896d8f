package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.sim.SimDmaBuf;
import org.vfioexport.kernel.sim.SimKernel;
import org.vfioexport.kernel.sim.SimSemantics;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.Fds;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.device.DeviceFixture.await;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The kernel selftests' fail-nth sweep: run a passing scenario once to count its simulated kernel steps, then run
 * it again once per step with exactly that step failing. Whatever fails, nothing may leak: no fd (counted in
 * /proc/self/fd), no export, no kernel dma-buf, no event out of grammar. Under both schedulers of the device core.
 */
class FailNthSweepTest {
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

    /** The scenario; returns the kernel objects it created. Failures of single operations are expected. */
    private static List<SimDmaBuf> scenario(DeviceFixture fx) {
        List<SimDmaBuf> made = new ArrayList<>();
        List<Export> mine = new ArrayList<>();
        DeviceHandle nvme = fx.device(NVME), gpu = fx.device(GPU);
        settle(nvme.export(req(2, 0, 2 * PG)), mine, made);
        settle(gpu.export(req(0, PG, PG)), mine, made);
        settle(nvme.setMemory(false), mine, made);
        settle(nvme.export(req(2, 4 * PG, PG)), mine, made);
        settle(nvme.setMemory(true), mine, made);
        settle(nvme.reset(), mine, made);
        settle(gpu.reset(), mine, made);                                  // no reset method: EINVAL
        if (!mine.isEmpty()) settle(fx.device(mine.getFirst().device()).release(mine.getFirst(), Cause.CLIENT), mine, made);
        for (Export e : mine) if (!e.isDying()) settle(fx.device(e.device()).release(e, Cause.SESSION_END), mine, made);
        return made;
    }

    private static ExportRequest req(int region, long offset, long length) {
        return new ExportRequest("sweep", region, List.of(new DmaRange(offset, length)), 0);
    }

    private static void settle(Future<?> f, List<Export> mine, List<SimDmaBuf> made) {
        try {
            Object r = f.toCompletionStage().toCompletableFuture().get(DeviceFixture.WAIT_MS, TimeUnit.MILLISECONDS);
            if (r instanceof Export e && !mine.contains(e)) {
                mine.add(e);
                made.add(SimKernel.kernelObject(e.buf()));
            }
        } catch (java.util.concurrent.ExecutionException expected) {
            // the injected failure, or a consequence of it
        } catch (Exception e) {
            throw new AssertionError("an operation hung under fault injection", e);
        }
    }

    @ParameterizedTest
    @EnumSource(Discipline.class)
    void everyStepFailingLeaksNothing(Discipline discipline) throws Exception {
        long calls;
        {
            long fds = Fds.open();
            SimKernel k = Conf.defaultSim(SimSemantics.V7_1, 0);
            DeviceFixture fx = new DeviceFixture(vertx, k, discipline);
            List<SimDmaBuf> made = scenario(fx);
            assertEquals(3, made.size(), "the scenario passes without faults");
            calls = k.faults().calls();
            fx.close();
            assertEquals(fds, Fds.open());
        }
        assertTrue(calls > 30, "the scenario drives the kernel (" + calls + " steps)");
        for (int errno : new int[] {Errno.ENOMEM.value, Errno.EAGAIN.value}) {
            for (long n = 1; n <= calls; n++) {
                sweepOne(n, errno, discipline);
            }
        }
    }

    private void sweepOne(long n, int errno, Discipline discipline) throws Exception {
        String at = "step " + n + " failing with " + Errno.nameOf(errno);
        long fds = Fds.open();
        SimKernel k = Conf.defaultSim(SimSemantics.V7_1, 0);
        k.faults().failNth(n, errno);
        DeviceFixture fx;
        try {
            fx = new DeviceFixture(vertx, k, discipline);
        } catch (AssertionError startFailed) {
            // opening a device failed: the start must have closed what it had opened
            for (String id : k.deviceIds()) assertTrue(k.device(id) == null, at + ": " + id + " left open");
            k.close();
            assertEquals(fds, Fds.open(), at + ": fds leaked by a failed start");
            return;
        }
        List<SimDmaBuf> made = scenario(fx);
        await(fx.devices.shutdown());
        assertTrue(k.deferred().drain(DeviceFixture.WAIT_MS));
        EventInvariants inv = fx.checkInvariants();
        for (String d : List.of(NVME, GPU)) {
            assertTrue(inv.unreleased(d).isEmpty(), at + ": unreleased " + inv.unreleased(d) + " in "
                    + DeviceFixture.shape(fx.eventsOf(d)));
        }
        for (SimDmaBuf b : made) assertEquals(SimDmaBuf.Phase.RELEASED, b.phase(), at + ": kernel dma-buf not released");
        assertEquals(0, fx.devices.liveExports(), at);
        k.close();
        assertEquals(fds, Fds.open(), at + ": fds leaked");
    }
}

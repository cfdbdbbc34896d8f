package org.vfioexport.device;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventInvariants;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.sim.SimAttachment;
import org.vfioexport.kernel.sim.SimDmaBuf;
import org.vfioexport.kernel.sim.SimKernel;
import org.vfioexport.kernel.sim.SimSemantics;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.Fds;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.device.DeviceFixture.await;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * Randomised interleavings: several clients, each on its own thread or event loop, pipeline exports, releases
 * (from plain threads and from other event loops), resets, memory toggles and device closes against both
 * devices. Each seed is one run; afterwards the events must satisfy every invariant (among them the linearization
 * of releases: each export live at a resetting or memory-disabled state is revoked or released before anything
 * else, and a close releases everything before closed), the service's view must match the simulated kernel's, and
 * nothing may be left: no export, no kernel object, no fd. Releases from plain threads and other loops racing
 * queued resets are what make the release-linearization rule fail on a device that stamps releases late.
 *
 * <p>A third of the exports are watched (the revocation handshake) by their client, which answers
 * {@code export.quiesced} from another loop, stays silent until the deadline (a few ms), or goes away (its
 * connection closes) when told; resets and memory-offs give each handshake 0 to 3 ms. The events must then also
 * satisfy the handshake's rules (revoking before the window, revoked with acked and timed_out).
 */
class InterleavingTest {
    private static final long PG = 4096;
    private static final int CLIENTS = 4, OPS = 60;
    private static Vertx vertx;

    @BeforeAll
    static void vertx() {
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void closeVertx() {
        await(vertx.close());
    }

    /**
     * Every seed under both schedulers of the device core, which must be equally correct. Under message order, odd
     * seeds put the devices on the loop the test's "other loops" use (their calls run at once, on the device's own
     * thread), even seeds each device on a loop of its own (every call is a message).
     */
    static Stream<Arguments> seeds() {
        return LongStream.rangeClosed(1, Long.getLong("interleaving.seeds", 100)).boxed().flatMap(s -> Stream.of(
                Arguments.of(s, Discipline.MESSAGE_ORDER), Arguments.of(s, Discipline.RW_LOCK)));
    }

    /** How a client answers the revocation handshake. */
    private enum Answer { QUIESCE, SILENT, GO_AWAY }

    /** What one client did. */
    private static final class Client {
        final List<Future<?>> ops = Collections.synchronizedList(new ArrayList<>());
        final ConcurrentLinkedQueue<Export> owned = new ConcurrentLinkedQueue<>();
        Watcher watcher;
    }

    /** A client's watcher: answers on another loop (never inside the device's step), as a connection does. */
    private static Watcher watcher(DeviceFixture fx, Answer answer, Context otherLoop, Client client) {
        return new Watcher() {
            @Override
            public void revoking(String device, String exportId, long seq, long deadlineMs) {
                Watcher self = this;
                switch (answer) {
                    case QUIESCE -> otherLoop.runOnContext(v -> client.ops.add(fx.device(device).quiesced(exportId, self)));
                    case GO_AWAY -> otherLoop.runOnContext(v -> fx.device(device).watcherGone(self));
                    case SILENT -> { }
                }
            }
        };
    }

    @ParameterizedTest(name = "seed {0}, {1}")
    @MethodSource("seeds")
    void randomInterleaving(long seed, Discipline discipline) throws Exception {
        SimSemantics sem = seed % 4 < 2 ? SimSemantics.V6_19 : SimSemantics.V7_1;
        // resets that take no time: hundreds of them per seed, and their duration is not what this test is about
        DeviceFixture fx = new DeviceFixture(vertx, Conf.defaultSim(sem, 0), discipline,
                seed % 2 == 1 ? DeviceManager.Placement.CALLER_LOOP : DeviceManager.Placement.OWN_LOOPS);
        long baselineFds = Fds.open();
        List<SimDmaBuf> kernelObjects = Collections.synchronizedList(new ArrayList<>());
        List<SimAttachment> importers = Collections.synchronizedList(new ArrayList<>());
        List<Client> clients = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < CLIENTS; c++) {
            Client client = new Client();
            clients.add(client);
            Random rnd = new Random(seed * 1000 + c);
            Context otherLoop = vertx.getOrCreateContext();  // a loop that is not any device's
            client.watcher = watcher(fx, Answer.values()[c % 3], otherLoop, client);
            threads.add(new Thread(() -> drive(fx, client, rnd, otherLoop, kernelObjects, importers), "client-" + c));
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join(DeviceFixture.WAIT_MS);
            assertTrue(!t.isAlive(), "seed " + seed + ": a client thread did not finish");
        }
        for (Client c : clients) {
            for (Future<?> f : List.copyOf(c.ops)) {
                // each operation completes, one way or the other, within the bound
                f.toCompletionStage().toCompletableFuture().handle((v, e) -> null).get(DeviceFixture.WAIT_MS,
                        java.util.concurrent.TimeUnit.MILLISECONDS);
            }
        }

        // quiescent: the service's view of every export agrees with the kernel's
        for (Client c : clients) {
            for (Export e : c.owned) {
                if (e.state() == ExportState.RELEASED) continue;
                SimDmaBuf k = SimKernel.kernelObject(e.buf());
                assertEquals(e.state() == ExportState.REVOKED, k.revoked(),
                        "seed " + seed + ": " + e.id() + " is " + e.state() + " but the kernel says revoked=" + k.revoked());
            }
        }

        // every owner goes away: what they still own is released as their sessions end
        List<Future<Export>> endings = new ArrayList<>();
        for (Client c : clients) {
            for (Export e : c.owned) {
                if (!e.isDying()) endings.add(fx.device(e.device()).release(e, Cause.SESSION_END));
            }
        }
        for (Future<Export> f : endings) await(f);
        await(fx.devices.shutdown());
        for (SimAttachment a : List.copyOf(importers)) a.detach();
        assertTrue(fx.kernel.deferred().drain(DeviceFixture.WAIT_MS));

        EventInvariants inv = fx.checkInvariants();
        for (String d : List.of(NVME, GPU)) {
            assertEquals(fx.hub.log(d).head(), inv.lastSeq(d), "seed " + seed + ": events missing for " + d);
            assertTrue(inv.unreleased(d).isEmpty(), "seed " + seed + ": exports never released: " + inv.unreleased(d));
        }
        assertEquals(0, fx.devices.liveExports());
        for (SimDmaBuf k : kernelObjects) {
            assertEquals(SimDmaBuf.Phase.RELEASED, k.phase(), "seed " + seed + ": a kernel dma-buf was never released");
        }
        assertEquals(baselineFds, Fds.open(), "seed " + seed + ": fds leaked");
        fx.kernel.close();
    }

    private static void drive(DeviceFixture fx, Client client, Random rnd, Context otherLoop,
                              List<SimDmaBuf> kernelObjects, List<SimAttachment> importers) {
        for (int i = 0; i < OPS; i++) {
            String dev = rnd.nextInt(3) == 0 ? GPU : NVME;
            DeviceHandle h = fx.device(dev);
            int roll = rnd.nextInt(100);
            if (roll < 45) {
                long len = PG * (1 + rnd.nextInt(4));
                long off = rnd.nextInt(10) == 0 ? 1 : PG * rnd.nextInt(8);         // one in ten is refused: unaligned
                Future<Export> f = h.export(new ExportRequest("client", 2, List.of(new DmaRange(off, len)), 0));
                client.ops.add(f.onSuccess(e -> {
                    client.owned.add(e);
                    SimDmaBuf k = SimKernel.kernelObject(e.buf());
                    kernelObjects.add(k);
                    if (rnd.nextInt(4) == 0) attachImporter(k, importers);
                    if (rnd.nextInt(3) == 0) client.ops.add(h.watch(e, client.watcher));
                }));
            } else if (roll < 75) {
                Export e = client.owned.peek();
                if (e == null || e.isDying()) continue;
                if (rnd.nextBoolean()) {
                    client.ops.add(h(e, fx).release(e, Cause.CLIENT));                 // off every loop
                } else {
                    Promise<Export> p = Promise.promise();
                    otherLoop.runOnContext(v -> h(e, fx).release(e, Cause.SESSION_END).onComplete(p));
                    client.ops.add(p.future());                                        // from another loop
                }
            } else if (roll < 85) {
                client.ops.add(h.reset(rnd.nextInt(4)));
            } else if (roll < 98) {
                client.ops.add(h.setMemory(rnd.nextBoolean(), rnd.nextInt(4)));
            } else if (rnd.nextInt(4) == 0) {
                client.ops.add(h.close(Cause.DEVICE_CLOSE));
            }
        }
    }

    private static DeviceHandle h(Export e, DeviceFixture fx) {
        return fx.device(e.device());
    }

    /** An importer that maps when it can and unmaps as soon as it is told to (a well-behaved RDMA NIC). */
    private static void attachImporter(SimDmaBuf k, List<SimAttachment> importers) {
        try {
            SimAttachment a = k.attach(true, x -> {
                if (x.mapped() > 0) x.unmap();
            });
            importers.add(a);
            try {
                a.map();
            } catch (KernelException revoked) {
                // revoked between attach and map: a real importer retries after the restore
            }
        } catch (KernelException revokedOrReleasing) {
            // the export was revoked or is being released: attach refuses, as the kernel does
        }
    }
}

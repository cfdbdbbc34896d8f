package org.vfioexport.device;

import io.vertx.core.Future;
import io.netty.channel.EventLoop;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventHub;
import org.vfioexport.kernel.DeviceInfo;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.VfioKernel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Opens every device of a kernel, puts a {@link DeviceCore} in each, driven by the chosen scheduler, and hands out
 * their handles.
 *
 * <p>Event-loop layout (message order): every device lives on the event loop of the thread that starts the manager.
 * The daemon starts the manager and its socket listener from the same thread, and a Vert.x server started from a
 * thread serves all of its connections on that thread's loop, so devices and connections share one loop: an
 * export crosses no thread at all, only what can sleep goes to the worker pool. See docs/design.md for the
 * measurements behind this layout; {@link Placement#OWN_LOOPS} (one loop per device, round robin) is the
 * alternative, selectable with the system property {@code vfioexport.device-loops=own}.
 */
public final class DeviceManager {
    /** Where message-order devices live. */
    public enum Placement {
        /** On the event loop of the thread that starts the manager (the daemon's connections' loop). */
        CALLER_LOOP,
        /** Each device on the next event loop of Vert.x, round robin. */
        OWN_LOOPS;

        static Placement fromSystemProperty() {
            String v = System.getProperty("vfioexport.device-loops", "caller");
            return switch (v) {
                case "caller" -> CALLER_LOOP;
                case "own" -> OWN_LOOPS;
                default -> throw new IllegalArgumentException("vfioexport.device-loops must be caller or own, got " + v);
            };
        }
    }

    private final Map<String, ManagedDevice> devices;

    private DeviceManager(Map<String, ManagedDevice> devices) {
        this.devices = devices;
    }

    /**
     * Opens every device of {@code kernel} and starts its scheduler. {@code names} gives a device's display name
     * (may be empty). A device that fails to open fails the start, naming the device and the errno.
     */
    public static Future<DeviceManager> start(Vertx vertx, VfioKernel kernel, EventHub hub, Map<String, String> names,
                                              Discipline discipline) {
        return start(vertx, kernel, hub, names, discipline, Placement.fromSystemProperty());
    }

    public static Future<DeviceManager> start(Vertx vertx, VfioKernel kernel, EventHub hub, Map<String, String> names,
                                              Discipline discipline, Placement placement) {
        VertxInternal vx = (VertxInternal) vertx;
        // decided here, on the starting thread: its loop is the one its server's connections will use
        EventLoop callerLoop = vx.getOrCreateContext().nettyEventLoop();
        List<String> ids = kernel.deviceIds();
        List<Future<OpenedDevice>> opening = new ArrayList<>();
        for (String id : ids) {
            opening.add(vertx.executeBlocking(() -> open(kernel, id, names.getOrDefault(id, id)), false));
        }
        // join, not all: wait for every open to finish before judging, so a failure cannot race a late success
        return Future.join(opening).recover(err -> {
            // close what did open, so a failed start leaks no device fd
            for (Future<OpenedDevice> f : opening) if (f.succeeded()) f.result().device().close();
            return Future.failedFuture(err);
        }).map(all -> {
            Map<String, ManagedDevice> handles = new LinkedHashMap<>();
            for (int i = 0; i < ids.size(); i++) {
                OpenedDevice o = opening.get(i).result();
                var log = hub.log(ids.get(i));
                handles.put(ids.get(i), switch (discipline) {
                    case RW_LOCK -> new RwLockDevice(vertx, o, log);
                    case MESSAGE_ORDER -> new MessageOrderDevice(o, log, vx.contextBuilder()
                            .withEventLoop(placement == Placement.CALLER_LOOP ? callerLoop : vx.nettyEventLoopGroup().next())
                            .build());
                });
            }
            return new DeviceManager(handles);
        });
    }

    public static Future<DeviceManager> start(Vertx vertx, VfioKernel kernel, EventHub hub, Map<String, String> names) {
        return start(vertx, kernel, hub, names, Discipline.MESSAGE_ORDER);
    }

    public static Future<DeviceManager> start(Vertx vertx, VfioKernel kernel, EventHub hub) {
        return start(vertx, kernel, hub, Map.of(), Discipline.MESSAGE_ORDER);
    }

    private static OpenedDevice open(VfioKernel kernel, String id, String name) throws KernelException {
        VfioDevice d = kernel.open(id);
        try {
            DeviceInfo info = d.info();
            return new OpenedDevice(d, kernel.name(), name, info.resetSupported(), d.regions(), d.memoryEnabled(),
                    probe(d));
        } catch (KernelException | RuntimeException e) {
            d.close();
            throw e;
        }
    }

    /** PROBE of the dma-buf feature: null when supported, the reason otherwise. Other errors are real failures. */
    private static String probe(VfioDevice d) throws KernelException {
        try {
            d.probeDmaBuf();
            return null;
        } catch (KernelException e) {
            if (e.errno() == Errno.ENOTTY.value) return "the kernel has no VFIO dma-buf export (ENOTTY; needs Linux 6.19+ with CONFIG_VFIO_PCI_DMABUF)";
            if (e.errno() == Errno.EOPNOTSUPP.value) return "the device's driver cannot export dma-bufs (EOPNOTSUPP; a vfio-pci variant driver)";
            throw e;
        }
    }

    /** Device ids in the kernel's order. */
    public List<String> ids() {
        return List.copyOf(devices.keySet());
    }

    /** The handle of {@code id}, or null. */
    public DeviceHandle get(String id) {
        return devices.get(id);
    }

    /** Exports alive across all devices. */
    public int liveExports() {
        int n = 0;
        for (ManagedDevice v : devices.values()) n += v.exportCount();
        return n;
    }

    /** Exports alive on {@code id} (0 for an unknown device). */
    public int liveExports(String id) {
        ManagedDevice v = devices.get(id);
        return v == null ? 0 : v.exportCount();
    }

    /**
     * Closes every device, releasing each export with {@code cause}. A revocation handshake under way is cut short
     * first: its operation goes on at once, and the close queued behind it follows.
     */
    public Future<Void> shutdown(Cause cause) {
        List<Future<Void>> closing = new ArrayList<>();
        for (ManagedDevice v : devices.values()) {
            v.cutHandshakeShort();
            closing.add(v.close(cause));
        }
        return Future.join(closing).mapEmpty();
    }

    /** Closes every device with cause {@code shutdown}. */
    public Future<Void> shutdown() {
        return shutdown(Cause.SHUTDOWN);
    }
}

package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventHub;
import org.vfioexport.kernel.DeviceInfo;
import org.vfioexport.kernel.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.VfioKernel;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Opens every device of a kernel, deploys one {@link DeviceVerticle} per device and hands out their handles. */
public final class DeviceManager {
    private final Vertx vertx;
    private final Map<String, ManagedDevice> devices;
    private final List<String> deploymentIds;

    private DeviceManager(Vertx vertx, Map<String, ManagedDevice> devices, List<String> deploymentIds) {
        this.vertx = vertx;
        this.devices = devices;
        this.deploymentIds = deploymentIds;
    }

    /**
     * Opens every device of {@code kernel} and deploys its verticle. {@code names} gives a device's display name
     * (may be empty). A device that fails to open fails the start, naming the device and the errno.
     */
    public static Future<DeviceManager> start(Vertx vertx, VfioKernel kernel, EventHub hub, Map<String, String> names,
                                              Discipline discipline) {
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
        }).compose(all -> {
            Map<String, ManagedDevice> verticles = new LinkedHashMap<>();
            List<Future<String>> deploying = new ArrayList<>();
            for (int i = 0; i < ids.size(); i++) {
                OpenedDevice o = opening.get(i).result();
                if (discipline == Discipline.RW_LOCK) {
                    verticles.put(ids.get(i), new LockedDevice(vertx, o, hub.log(ids.get(i))));
                    continue;
                }
                DeviceVerticle v = new DeviceVerticle(o, hub.log(ids.get(i)));
                verticles.put(ids.get(i), v);
                deploying.add(vertx.deployVerticle(v));
            }
            return Future.all(deploying).map(d -> {
                List<String> deployments = new ArrayList<>();
                for (Future<String> f : deploying) deployments.add(f.result());
                return new DeviceManager(vertx, verticles, deployments);
            });
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

    /** Closes every device, releasing each export with {@code cause}, then undeploys the verticles. */
    public Future<Void> shutdown(Cause cause) {
        List<Future<Void>> closing = new ArrayList<>();
        for (ManagedDevice v : devices.values()) closing.add(v.close(cause));
        return Future.join(closing).compose(x -> {
            List<Future<Void>> undeploying = new ArrayList<>();
            for (String d : deploymentIds) undeploying.add(vertx.undeploy(d));
            return Future.join(undeploying);
        }).mapEmpty();
    }

    /** Closes every device with cause {@code shutdown}. */
    public Future<Void> shutdown() {
        return shutdown(Cause.SHUTDOWN);
    }
}

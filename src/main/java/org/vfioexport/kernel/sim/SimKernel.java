package org.vfioexport.kernel.sim;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.VfioKernel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The simulated kernel, the embedded default backend: devices from configuration, kernel semantics of 6.19 or
 * 7.1, real memfd-backed dma-buf fds, fault injection, deferred release, and an importer API for tests.
 */
public final class SimKernel implements VfioKernel {
    private final Map<String, SimDeviceSpec> specs = new LinkedHashMap<>();
    private final Map<String, SimDevice> open = new LinkedHashMap<>();   // guarded by this
    private final SimSemantics semantics;
    private final boolean memoryEnabledAtOpen;
    private final SimFaults faults = new SimFaults();
    private final DeferredWork deferred = new DeferredWork();

    public SimKernel(List<SimDeviceSpec> devices, SimSemantics semantics, boolean memoryEnabledAtOpen) {
        for (SimDeviceSpec d : devices) {
            if (specs.containsKey(d.id())) throw new IllegalArgumentException("device " + d.id() + " listed twice");
            specs.put(d.id(), d);
        }
        // BARs without a configured address get one as firmware assigns them
        for (SimDeviceSpec d : BarPlacement.place(List.copyOf(specs.values()))) specs.put(d.id(), d);
        this.semantics = semantics;
        this.memoryEnabledAtOpen = memoryEnabledAtOpen;
    }

    /** From the configuration's {@code devices} list and optional {@code sim} section. */
    @SuppressWarnings("unchecked")
    public static SimKernel fromConfig(Map<String, Object> conf) {
        List<SimDeviceSpec> devices = new ArrayList<>();
        for (Object o : (List<Object>) conf.getOrDefault("devices", List.of())) {
            devices.add(SimDeviceSpec.fromMap((Map<String, Object>) o));
        }
        Map<String, Object> sim = (Map<String, Object>) conf.getOrDefault("sim", Map.of());
        SimSemantics sem = SimSemantics.parse(String.valueOf(sim.getOrDefault("semantics", "6.19")));
        boolean mem = !Boolean.FALSE.equals(sim.get("memory_enabled_at_open"));
        return new SimKernel(devices, sem, mem);
    }

    @SuppressWarnings("unchecked")
    public static SimKernel fromConfigFile(Path file) throws IOException {
        return fromConfig(new ObjectMapper().readValue(file.toFile(), Map.class));
    }

    /** The same devices and settings under other semantics (for tests that compare generations). */
    public static SimKernel fromConfigFile(Path file, SimSemantics semantics) throws IOException {
        SimKernel k = fromConfigFile(file);
        return new SimKernel(List.copyOf(k.specs.values()), semantics, k.memoryEnabledAtOpen);
    }

    @Override
    public String name() {
        return "sim";
    }

    /** A client plays a peer-to-peer importer here ({@link SimAttachment}). */
    @Override
    public boolean hasImporters() {
        return true;
    }

    @Override
    public boolean isAvailable() {
        return true;
    }

    @Override
    public String unavailabilityCause() {
        return null;
    }

    @Override
    public List<String> deviceIds() {
        return List.copyOf(specs.keySet());
    }

    public SimSemantics semantics() {
        return semantics;
    }

    public SimFaults faults() {
        return faults;
    }

    public DeferredWork deferred() {
        return deferred;
    }

    /**
     * Opens a device. Like vfio_pci_core_enable, opening tries a function reset first: EAGAIN from it aborts the
     * open (inject it at step {@code open.try_reset}). The memory-enable bit starts as configured at every open:
     * Linux restores, at close, the config state it saved at open (seen on 7.2).
     *
     * <p>A device that is open already cannot be opened again: the simulator answers as Linux's iommufd cdev path
     * does, where {@code VFIO_DEVICE_BIND_IOMMUFD} of a second fd is EINVAL (vfio_df_open allows one open; the
     * group path would allow several, but the cdev path is the modern one and the service opens each device once).
     */
    @Override
    public synchronized VfioDevice open(String deviceId) throws KernelException {
        SimDeviceSpec spec = specs.get(deviceId);
        if (spec == null) throw new KernelException(Ops.OPEN, Errno.ENOENT, "no device " + deviceId);
        if (open.containsKey(deviceId)) {
            // the detail names the failing step as LinuxKernel's cdev path does ("<step> for <id>")
            throw new KernelException(Ops.OPEN, Errno.EINVAL, "VFIO_DEVICE_BIND_IOMMUFD for " + deviceId + ": already open");
        }
        faults.enter("open", Ops.OPEN);
        try {
            faults.enter("open.try_reset", Ops.OPEN);
        } catch (KernelException e) {
            if (e.errno() == Errno.EAGAIN.value) throw e;
            // any other failure only marks reset as unsupported in the kernel; the model keeps its configured method
        }
        SimDevice d = new SimDevice(this, spec, memoryEnabledAtOpen);
        open.put(deviceId, d);
        return d;
    }

    synchronized void closed(SimDevice d) {
        open.remove(d.id(), d);
    }

    /** The open device object, for tests that look inside the model. */
    public synchronized SimDevice device(String id) {
        return open.get(id);
    }

    /** The kernel object behind a dma-buf this kernel returned: importers attach through it. */
    public static SimDmaBuf kernelObject(DmaBuf buf) {
        if (buf instanceof SimDmaBufFile f) return f.kernelObject();
        throw new IllegalArgumentException("not a simulated dma-buf: " + buf);
    }

    @Override
    public void close() {
        List<SimDevice> devices;
        synchronized (this) {
            devices = List.copyOf(open.values());
        }
        for (SimDevice d : devices) d.close();
        deferred.close();
    }
}

package org.vfioexport.api;

import org.vfioexport.audit.Audit;
import org.vfioexport.device.DeviceManager;
import org.vfioexport.metrics.DaemonMetrics;
import org.vfioexport.events.EventHub;

import io.vertx.core.Future;
import org.vfioexport.device.DeviceSnapshot;
import org.vfioexport.kernel.Region;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** What every connection shares: the devices, the event hub, the policy, the limits and the method table. */
public final class Service {
    public static final String NAME = "vfio-export";
    public static final String VERSION = "0.1.0";
    public static final int PROTOCOL = 1;
    public static final int DEFAULT_MAX_LINE_BYTES = 65536;

    private final DeviceManager devices;
    private final EventHub hub;
    private final Policy policy;
    private final Audit audit;
    private final String backend;
    private final int maxLineBytes;
    private final long startNanos = System.nanoTime();
    private final MethodRegistry methods;
    private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
    private final UserAccounts accounts = new UserAccounts();
    private final Map<String, List<Region>> regions = new ConcurrentHashMap<>();
    private final DaemonMetrics metrics;
    private final HandshakeSettings handshake;
    private volatile boolean shuttingDown;
    /** Cluster mode's part of the protocol, or null when it is off. */
    private volatile Fleet fleet;

    public Service(DeviceManager devices, EventHub hub, Policy policy, String backend, int maxLineBytes, Audit audit) {
        this(devices, hub, policy, backend, maxLineBytes, audit, null);
    }

    /** {@code metrics}: the daemon's registry, fed with request latencies and errors; null for a private one. */
    public Service(DeviceManager devices, EventHub hub, Policy policy, String backend, int maxLineBytes, Audit audit,
                   DaemonMetrics metrics) {
        this(devices, hub, policy, backend, maxLineBytes, audit, metrics, HandshakeSettings.DEFAULTS);
    }

    /** {@code handshake}: the revocation handshake's deadlines and watch limit (the {@code handshake} section). */
    public Service(DeviceManager devices, EventHub hub, Policy policy, String backend, int maxLineBytes, Audit audit,
                   DaemonMetrics metrics, HandshakeSettings handshake) {
        this(devices, hub, policy, backend, maxLineBytes, audit, metrics, handshake, "sim".equals(backend));
    }

    /**
     * {@code importers}: whether the backend has an importer a client can drive ({@code importer.*}): the
     * simulated kernel's, or iommufd on a Linux kernel that has it.
     */
    public Service(DeviceManager devices, EventHub hub, Policy policy, String backend, int maxLineBytes, Audit audit,
                   DaemonMetrics metrics, HandshakeSettings handshake, boolean importers) {
        this.handshake = handshake;
        this.devices = devices;
        this.hub = hub;
        this.policy = policy;
        this.backend = backend;
        this.maxLineBytes = maxLineBytes;
        this.audit = audit;
        this.methods = ServiceMethods.registry(importers, audit.enabled());
        this.metrics = metrics != null ? metrics : new DaemonMetrics();
    }

    /**
     * Reads every device's region table once, at start: regions do not change while a device is open, and error
     * messages about ranges need them without another trip to the device (which would reorder responses).
     */
    public Future<Void> loadRegions() {
        List<Future<DeviceSnapshot>> all = new ArrayList<>();
        for (String id : devices.ids()) all.add(devices.get(id).describe());
        return Future.all(all).map(cf -> {
            for (Future<DeviceSnapshot> f : all) regions.put(f.result().device(), f.result().regions());
            return null;
        });
    }

    /** The region table of {@code device}, or null if unknown. */
    public List<Region> regions(String device) {
        return regions.get(device);
    }

    public DeviceManager devices() {
        return devices;
    }

    public EventHub hub() {
        return hub;
    }

    public Policy policy() {
        return policy;
    }

    public HandshakeSettings handshake() {
        return handshake;
    }

    /** The audit journal (or {@link Audit#OFF}). */
    public Audit audit() {
        return audit;
    }

    public String backend() {
        return backend;
    }

    public int maxLineBytes() {
        return maxLineBytes;
    }

    public DaemonMetrics metrics() {
        return metrics;
    }

    public MethodRegistry methods() {
        return methods;
    }

    public long uptimeMillis() {
        return (System.nanoTime() - startNanos) / 1_000_000;
    }

    public long pid() {
        return ProcessHandle.current().pid();
    }

    public Set<Session> sessions() {
        return sessions;
    }

    /** What each user holds, for the per-uid limits. */
    public UserAccounts accounts() {
        return accounts;
    }

    /** Cluster mode's hooks, or null when cluster mode is off. */
    public Fleet fleet() {
        return fleet;
    }

    public void fleet(Fleet f) {
        fleet = f;
    }

    public boolean isShuttingDown() {
        return shuttingDown;
    }

    /** From now on every request is refused with -32007. */
    public void beginShutdown() {
        shuttingDown = true;
    }
}

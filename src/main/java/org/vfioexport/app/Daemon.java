package org.vfioexport.app;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.api.ApiServer;
import org.vfioexport.api.GuardedTransport;
import org.vfioexport.api.Policy;
import org.vfioexport.api.Service;
import org.vfioexport.api.Session;
import org.vfioexport.audit.Audit;
import org.vfioexport.cluster.ClusterSettings;
import org.vfioexport.cluster.FleetNode;
import org.vfioexport.cluster.hz.HazelcastVertx;
import org.vfioexport.device.DeviceManager;
import org.vfioexport.events.EventHub;
import org.vfioexport.metrics.DaemonMetrics;
import org.vfioexport.metrics.MetricsServer;
import org.vfioexport.kernel.VfioKernel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The running service: socket lock, kernel backend, devices, event hub, listener. {@link #start} returns once the
 * socket accepts connections; {@link #stop} releases every export (cause shutdown), closes the devices, the
 * connections and the socket.
 */
public final class Daemon {
    private static final Logger log = LoggerFactory.getLogger(Daemon.class);
    private static final long STOP_TIMEOUT_S = 20;
    /** The whole stop, from SIGTERM to the last fd closed. */
    static final long STOP_BUDGET_MS = 1000;
    /** How long the devices may take to release every export and close. */
    private static final long DEVICES_MS = 300;
    /** How long each connection's queued output may take to reach the kernel before it is dropped. */
    private static final long FLUSH_MS = 250;
    /** How long a half-closed connection is drained before it is closed. */
    private static final long LINGER_MS = 100;

    private final Vertx vertx;
    private final VfioKernel kernel;
    private final SocketLock lock;
    private final DeviceManager devices;
    private final Service service;
    private final ApiServer server;
    private final Path socket;
    private final Audit audit;
    /** The opt-in metrics port, or null; Vert.x closes it with everything else at stop. */
    private final MetricsServer metricsServer;
    private boolean stopped;
    /** Socket-activated: the socket is systemd's, and stays when the daemon stops. */
    private final boolean inherited;

    private Daemon(Vertx vertx, VfioKernel kernel, SocketLock lock, DeviceManager devices, Service service,
                   ApiServer server, Path socket, Audit audit, MetricsServer metricsServer, boolean inherited) {
        this.inherited = inherited;
        this.audit = audit;
        this.metricsServer = metricsServer;
        this.vertx = vertx;
        this.kernel = kernel;
        this.lock = lock;
        this.devices = devices;
        this.service = service;
        this.server = server;
        this.socket = socket;
    }

    /** Starts with the configuration's backend. */
    public static Daemon start(Config config) throws StartupException {
        return start(config, null);
    }

    /**
     * Starts on {@code config}'s socket. {@code kernel}, when given, is used instead of building the configured
     * backend (tests keep a handle on the simulated kernel this way); the daemon closes it at stop.
     */
    public static Daemon start(Config config, VfioKernel kernel) throws StartupException {
        config.validate(); // before anything is created on disk
        // socket-activated: systemd owns the socket (its path, mode and life), so there is nothing to lock or clear
        SocketActivation activation = SocketActivation.fromEnvironment(System.getenv(), ProcessHandle.current().pid());
        Path socket = activation == null ? config.socket() : activation.path();
        SocketLock lock = activation == null ? SocketLock.acquire(socket) : null;
        Vertx vertx = null;
        VfioKernel k = kernel;
        Audit audit = Audit.OFF;
        try {
            if (k == null) k = Backends.create(config.backend(), config);
            ClusterSettings cluster = config.cluster();
            FleetNode.Outbound fleet = null;
            if (cluster.enabled()) {
                // cluster mode: the event bus is clustered (Hazelcast); only this branch loads its classes
                HazelcastVertx.Clustered c = await(HazelcastVertx.start(cluster, GuardedTransport.epoll()),
                        "joining cluster " + cluster.name() + " as node " + cluster.node(), cluster.joinTimeoutMs());
                vertx = c.vertx();
                fleet = FleetNode.outbound(vertx, c.manager(), cluster);
            } else {
                vertx = Vertx.builder().withTransport(GuardedTransport.epoll()).build();
            }
            if (!vertx.isNativeTransportEnabled()) {
                throw new StartupException("the native epoll transport is not available ("
                        + vertx.unavailableNativeTransportCause() + "); fd passing needs it");
            }
            // events also go out on the event bus (other verticles, a clustered bus) and into the metrics
            DaemonMetrics metrics = new DaemonMetrics();
            EventHub hub = EventHub.publishingTo(vertx, config.eventRetention(),
                    fleet == null ? metrics.events() : metrics.events().andThen(fleet.publisher()));
            DeviceManager devices = await(DeviceManager.start(vertx, k, hub, config.deviceNames(),
                    config.discipline()), "opening the devices");
            Policy policy;
            try {
                policy = Policy.fromConfig(config.policy(), daemonUid(), openFileLimit());
            } catch (IllegalArgumentException e) {
                throw new StartupException("configuration: " + e.getMessage(), e);
            }
            audit = AuditJournals.open(config.audit(), k.name(), socket); // says on stderr if the last run died
            Service service;
            try {
                service = new Service(devices, hub, policy, k.name(), config.maxLineBytes(), audit, metrics,
                        config.handshake(), k.hasImporters());
            } catch (IllegalArgumentException e) {
                throw new StartupException("configuration: " + e.getMessage(), e);
            }
            metrics.watch(devices, hub, () -> service.sessions().size());
            await(service.loadRegions(), "reading the region tables");
            if (fleet != null) await(fleet.start(service, daemonUid()), "starting node " + cluster.node());
            ApiServer server = new ApiServer(vertx, service);
            MetricsServer metricsServer = null;
            if (config.metricsPort() >= 0) {
                metricsServer = await(MetricsServer.listen(vertx, metrics, config.metricsHost(), config.metricsPort()),
                        "listening for metrics on " + config.metricsHost() + ":" + config.metricsPort());
            }
            if (activation == null) {
                await(server.listen(socket, config.socketMode(), config.socketGroup()), "listening on " + socket);
            } else {
                await(server.listenInherited(activation.socket(), socket), "serving the inherited socket " + socket);
                log.info("socket-activated: serving {} ({}), whose mode and owner systemd sets", socket,
                        activation.socket());
            }
            return new Daemon(vertx, k, lock, devices, service, server, socket, audit, metricsServer, activation != null);
        } catch (StartupException | RuntimeException e) {
            audit.close();
            closeQuietly(vertx);
            if (k != null) k.close();
            if (lock != null) lock.close();
            throw e;
        } catch (Exception e) {
            audit.close();
            if (vertx != null) vertx.close();
            if (k != null) k.close();
            if (lock != null) lock.close();
            throw new StartupException(e.getMessage(), e);
        }
    }

    private static void closeQuietly(Vertx vertx) {
        if (vertx == null) return;
        try {
            vertx.close().await(STOP_TIMEOUT_S, TimeUnit.SECONDS);
        } catch (Exception e) {
            log.warn("closing Vert.x: {}", e.toString());
        }
    }

    private static <T> T await(Future<T> f, String what) throws StartupException {
        return await(f, what, TimeUnit.SECONDS.toMillis(STOP_TIMEOUT_S));
    }

    private static <T> T await(Future<T> f, String what, long timeoutMs) throws StartupException {
        try {
            return f.await(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new StartupException(what + " failed: " + (e.getMessage() == null ? e.toString() : e.getMessage()), e);
        }
    }

    /**
     * This process's RLIMIT_NOFILE soft limit (the JVM has already raised it to the hard limit), from which the
     * per-uid limits take their defaults.
     */
    static long openFileLimit() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/limits"))) {
                if (!l.startsWith("Max open files")) continue;
                String soft = l.substring("Max open files".length()).trim().split("\\s+")[0];
                return soft.equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(soft);
            }
        } catch (IOException | NumberFormatException e) {
            // fall through to the kernel's usual default
        }
        return 1024;
    }

    /** The uid of this process: the owner of /proc/self. */
    static int daemonUid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException e) {
            throw new IllegalStateException("cannot read this process's uid", e);
        }
    }

    public Path socket() {
        return socket;
    }

    /** Whether the socket was inherited (socket activation) rather than bound by this daemon. */
    public boolean socketActivated() {
        return inherited;
    }

    /** The metrics port actually bound, or -1 when {@code metrics.port} is not configured. */
    public int metricsPort() {
        return metricsServer == null ? -1 : metricsServer.port();
    }

    /** Where the metrics port serves, or null when {@code metrics.port} is not configured. */
    public String metricsUrl() {
        return metricsServer == null ? null : metricsServer.url();
    }

    public Service service() {
        return service;
    }

    public Vertx vertx() {
        return vertx;
    }

    public VfioKernel kernel() {
        return kernel;
    }

    /**
     * Stops within {@link #STOP_BUDGET_MS} whatever the clients do: no connection is read any more and new
     * requests are refused (-32007); every export is released with cause shutdown and the devices closed;
     * subscribers get the events already queued; each connection gets a short bounded flush, then a half-close;
     * then socket, backend and lock go.
     */
    public synchronized void stop() {
        if (stopped) return;
        stopped = true;
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STOP_BUDGET_MS);
        service.beginShutdown();
        try {
            onEverySession(s -> {
                s.stopReading();
                return Future.succeededFuture();
            }).transform(x -> devices.shutdown().timeout(DEVICES_MS, TimeUnit.MILLISECONDS))
                    .transform(x -> onEverySession(s -> s.shutdown(FLUSH_MS, LINGER_MS)))
                    .transform(x -> server.close())
                    .transform(x -> vertx.close())
                    .await(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (Exception e) {
            log.warn("stopping took too long or failed: {}", e.toString());
        }
        if (!inherited) {
            try {
                Files.deleteIfExists(socket);
            } catch (IOException e) {
                log.warn("cannot remove {}: {}", socket, e.getMessage());
            }
        }
        kernel.close();
        audit.close(); // daemon.stop: after every release was recorded
        if (lock != null) lock.close();
    }

    /**
     * Runs {@code step} for every connection on its own loop, after what was queued there before now (the
     * shutdown's events among them); completes when every step has.
     */
    private Future<Void> onEverySession(Function<Session, Future<Void>> step) {
        List<Future<Void>> all = new ArrayList<>();
        for (Session s : service.sessions()) {
            Promise<Void> p = Promise.promise();
            s.context().runOnContext(v -> step.apply(s).onComplete(p));
            all.add(p.future());
        }
        return Future.join(all).mapEmpty();
    }
}

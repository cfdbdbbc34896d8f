package org.vfioexport.app;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.client.SocketPath;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import sun.misc.Signal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code vfio-exportd}: runs the service until SIGTERM or SIGINT. */
@Command(name = "vfio-exportd", mixinStandardHelpOptions = true, version = "vfio-exportd 0.1.0",
        description = "Brokers PCI BAR memory of VFIO devices as dma-buf fds over a Unix socket.")
public final class DaemonCommand implements Callable<Integer> {
    private static final Logger log = LoggerFactory.getLogger(DaemonCommand.class);

    @Option(names = "--conf", paramLabel = "FILE", description = "configuration file (default: ${DEFAULT-VALUE})",
            defaultValue = "conf/vfio-export.json")
    Path conf;

    @Option(names = "--socket", paramLabel = "PATH", description = "socket path (default: $VFIO_EXPORT_SOCKET, else the "
            + "configuration's socket, else /run/vfio-export/vfio-export.sock as root, "
            + "$XDG_RUNTIME_DIR/vfio-export/vfio-export.sock otherwise)")
    Path socket;

    @Option(names = "--backend", paramLabel = "sim|linux", description = "kernel backend (default: the configuration's)")
    String backend;

    @Option(names = "--pidfile", paramLabel = "FILE",
            description = "write the daemon's pid to FILE once it listens; removed at a clean stop")
    Path pidfile;

    @Option(names = "--check-config",
            description = "check the configuration (with the other options applied), print the effective one, and exit")
    boolean checkConfig;

    @Option(names = "--discipline", paramLabel = "message-order|lock",
            description = "how a device serialises its operations (default: the configuration's, else message-order)")
    String discipline;

    @Option(names = "--log-level", paramLabel = "LEVEL",
            description = "error, warn, info, debug or trace (default: info)")
    Logging.Level logLevel;

    /**
     * The default configuration is looked up in the working directory first, then in the installation
     * ({@code VFIO_EXPORT_HOME}, set by bin/vfio-exportd), so the daemon starts from anywhere.
     */
    /** {@code --check-config}: 0 and the effective configuration on stdout, or 1 and the first problem on stderr. */
    private int checkConfig() {
        try {
            Config config = Config.load(resolveConf()).with("backend", backend).with("discipline", discipline)
                    .with("socket", socketOverride())
                    .with("pidfile", pidfile == null ? null : pidfile.toString());
            config.validate();
            System.out.println(config.effective(Daemon.daemonUid(), Daemon.openFileLimit()).encodePrettily());
            return 0;
        } catch (StartupException e) {
            // --check-config is a command for a person (or a unit's ExecStartPre=): its answer goes to the terminal
            // as plain lines, stdout for the configuration and stderr for the problem; logging is not started.
            System.err.println("vfio-exportd: invalid configuration: " + e.getMessage());
            return 1;
        }
    }

    /**
     * What replaces the configuration's {@code socket}: {@code --socket}, else $VFIO_EXPORT_SOCKET (the variable the
     * clients read, so that one setting moves both), else nothing. The order is {@link SocketPath}'s.
     */
    private String socketOverride() {
        if (socket != null) return socket.toString();
        String env = System.getenv(SocketPath.ENV);
        return env == null || env.isEmpty() ? null : env;
    }

    private Path resolveConf() {
        if (Files.exists(conf) || conf.isAbsolute() || !conf.equals(Config.DEFAULT_FILE)) return conf;
        String home = System.getenv("VFIO_EXPORT_HOME");
        return home == null ? conf : Path.of(home).resolve(conf);
    }

    @Override
    public Integer call() {
        if (checkConfig) return checkConfig();
        Logging.start(logLevel);
        int classes = ClassPreload.classesBeside(Main.class);
        log.debug("{} application classes loaded", classes);
        Daemon daemon;
        Pidfile pid = null;
        SystemdNotify systemd = SystemdNotify.fromEnvironment();
        try {
            Config config = Config.load(resolveConf()).with("backend", backend).with("discipline", discipline)
                    .with("socket", socketOverride())
                    .with("pidfile", pidfile == null ? null : pidfile.toString());
            daemon = Daemon.start(config);
            try {
                if (config.pidfile() != null) pid = Pidfile.write(config.pidfile());
            } catch (StartupException e) {
                daemon.stop();
                throw e;
            }
        } catch (StartupException e) {
            log.error("cannot start: {}", e.getMessage());
            return 1;
        }
        CountDownLatch stop = new CountDownLatch(1);
        Signal.handle(new Signal("TERM"), s -> stop.countDown());
        Signal.handle(new Signal("INT"), s -> stop.countDown());
        log.info("listening on {}", daemon.socket());
        System.out.println("vfio-exportd: listening on " + daemon.socket()
                + (daemon.socketActivated() ? " (socket-activated)" : ""));
        if (daemon.metricsUrl() != null) {
            log.info("metrics on {}", daemon.metricsUrl());
            System.out.println("vfio-exportd: metrics on " + daemon.metricsUrl());
        }
        System.out.flush();
        systemd.ready("listening on " + daemon.socket());
        try {
            stop.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        log.info("shutting down");
        System.out.println("vfio-exportd: shutting down");
        systemd.stopping();
        daemon.stop();
        if (pid != null) pid.close();
        log.info("stopped");
        System.out.println("vfio-exportd: stopped");
        return 0;
    }
}

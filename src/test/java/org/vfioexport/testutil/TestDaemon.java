package org.vfioexport.testutil;

import io.vertx.core.json.JsonObject;
import org.vfioexport.app.Config;
import org.vfioexport.app.Daemon;
import org.vfioexport.app.StartupException;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.kernel.sim.SimKernel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** An in-process daemon on the default configuration's simulated devices, on a socket in a test directory. */
public final class TestDaemon implements AutoCloseable {
    private final Daemon daemon;
    private final SimKernel kernel;

    private TestDaemon(Daemon daemon, SimKernel kernel) {
        this.daemon = daemon;
        this.kernel = kernel;
    }

    public static TestDaemon start(Path dir) {
        return start(dir, c -> { });
    }

    /**
     * {@code edit} may change the configuration (policy, limits) before start. Resets take no simulated time here
     * (the protocol tests reset dozens of times, and test the protocol, not the hardware's wait); an {@code edit}
     * may set a device's {@code reset_ms} back. The device suite and the daemon-process tests run the configured
     * 100 ms.
     */
    public static TestDaemon start(Path dir, Consumer<JsonObject> edit) {
        try {
            JsonObject conf = new JsonObject(Files.readString(Conf.file("vfio-export.json")));
            conf.put("socket", dir.resolve("vfio-export.sock").toString());
            for (Object d : conf.getJsonArray("devices")) {
                JsonObject device = (JsonObject) d;
                if (device.getBoolean("reset", false)) device.put("reset_ms", 0);
            }
            edit.accept(conf);
            Config config = new Config(conf);
            SimKernel kernel = SimKernel.fromConfig(config.asMap());
            return new TestDaemon(Daemon.start(config, kernel), kernel);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (StartupException e) {
            throw new IllegalStateException(e);
        }
    }

    public Daemon daemon() {
        return daemon;
    }

    public SimKernel kernel() {
        return kernel;
    }

    public Path socket() {
        return daemon.socket();
    }

    public VfioExportClient connect() throws IOException {
        return VfioExportClient.connect(socket()).timeout(20_000);
    }

    /** Fds of this process whose link names a simulated dma-buf (the service's references plus any client's). */
    public static long dmabufFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains("vfio-dmabuf");
                } catch (IOException e) {
                    return false; // closed while listing
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** How many fds of this process refer to the same open file as {@code fd} (same device and inode). */
    public static long fdsOnSameFile(int fd) {
        try {
            Object key = Files.readAttributes(Path.of("/proc/self/fd/" + fd), java.nio.file.attribute.BasicFileAttributes.class).fileKey();
            try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
                return s.filter(p -> {
                    try {
                        return key.equals(Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class).fileKey());
                    } catch (IOException e) {
                        return false; // closed while listing, or not a file
                    }
                }).count();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        daemon.stop();
    }
}

package org.vfioexport.testutil;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** vfio-exportd as a separate process (this test JVM's java and class path), its output collected line by line. */
public final class DaemonProcess implements AutoCloseable {
    private final Process process;
    private final Path socket;
    private final BlockingQueue<String> stdout = new LinkedBlockingQueue<>();
    private final List<String> stdoutSeen = new ArrayList<>();
    private final StringBuffer stderr = new StringBuffer();

    private final Thread stderrPump;

    private DaemonProcess(Process process, Path socket) {
        this.process = process;
        this.socket = socket;
        pump(process.getInputStream(), stdout::add);
        stderrPump = pump(process.getErrorStream(), l -> stderr.append(l).append('\n'));
    }

    private static Thread pump(java.io.InputStream in, Consumer<String> sink) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String l;
                while ((l = r.readLine()) != null) sink.accept(l);
            } catch (IOException ignored) {
                // the process ended
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** The java command line that runs {@code main} with {@code args} on this JVM's class path. */
    public static List<String> javaCommand(String main, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("--sun-misc-unsafe-memory-access=allow");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(main);
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Writes a configuration (the default one, edited) to {@code dir} and starts a daemon on it, not waiting. */
    public static DaemonProcess spawn(Path dir, Path socket, Consumer<JsonObject> edit) {
        return spawn(dir, socket, edit, List.of());
    }

    /**
     * As {@link #spawn(Path, Path, Consumer)}, with {@code prefix} before the java command (e.g. {@code prlimit
     * --nofile=300:300 --}, which execs java: the process is still the daemon's) and {@code daemonArgs} after the
     * daemon's {@code --conf} and {@code --socket}.
     */
    public static DaemonProcess spawn(Path dir, Path socket, Consumer<JsonObject> edit, List<String> prefix,
                                      String... daemonArgs) {
        try {
            JsonObject conf = new JsonObject(Files.readString(Conf.file("vfio-export.json")));
            edit.accept(conf);
            Path file = dir.resolve("conf-" + System.nanoTime() + ".json");
            Files.writeString(file, conf.encodePrettily());
            List<String> cmd = new ArrayList<>(prefix);
            cmd.addAll(javaCommand("org.vfioexport.app.Main", "daemon", "--conf", file.toString(), "--socket",
                    socket.toString()));
            cmd.addAll(List.of(daemonArgs));
            return new DaemonProcess(new ProcessBuilder(cmd).start(), socket);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Starts {@code pb} (a daemon command line the caller built, with its own environment or directory), not waiting. */
    public static DaemonProcess spawn(ProcessBuilder pb, Path socket) {
        try {
            return new DaemonProcess(pb.start(), socket);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Starts a daemon and waits until it says it listens. */
    public static DaemonProcess start(Path dir) {
        return start(dir, c -> { });
    }

    public static DaemonProcess start(Path dir, Consumer<JsonObject> edit) {
        return start(dir, edit, List.of());
    }

    /** Starts a daemon with a command {@code prefix} and extra {@code daemonArgs} and waits until it listens. */
    public static DaemonProcess start(Path dir, Consumer<JsonObject> edit, List<String> prefix, String... daemonArgs) {
        DaemonProcess d = spawn(dir, dir.resolve("vfio-export.sock"), edit, prefix, daemonArgs);
        d.awaitLine("vfio-exportd: listening on " + d.socket, 60_000);
        return d;
    }

    /** Starts a daemon whose RLIMIT_NOFILE (soft and hard) is {@code nofile}, and waits until it listens. */
    public static DaemonProcess startWithFdLimit(Path dir, int nofile, Consumer<JsonObject> edit) {
        DaemonProcess d = spawn(dir, dir.resolve("vfio-export.sock"), edit,
                List.of("prlimit", "--nofile=" + nofile + ":" + nofile, "--"));
        d.awaitLine("vfio-exportd: listening on " + d.socket, 60_000);
        return d;
    }

    /** Waits for a stdout line equal to {@code line}; fails with what was printed. */
    public void awaitLine(String line, long timeoutMs) {
        awaitLineMatching(line, l -> l.equals(line), timeoutMs);
    }

    /** Waits for a stdout line starting with {@code prefix} and returns it; fails with what was printed. */
    public String awaitLineStartingWith(String prefix, long timeoutMs) {
        return awaitLineMatching(prefix + "...", l -> l.startsWith(prefix), timeoutMs);
    }

    private String awaitLineMatching(String line, java.util.function.Predicate<String> wanted, long timeoutMs) {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            long left = (deadline - System.nanoTime()) / 1_000_000;
            String l = null;
            try {
                if (left > 0) l = stdout.poll(left, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (l == null) {
                throw new AssertionError("no line '" + line + "' within " + timeoutMs + " ms; stdout " + stdoutSeen
                        + ", stderr: " + stderr + (process.isAlive() ? "" : ", exit " + process.exitValue()));
            }
            stdoutSeen.add(l);
            if (wanted.test(l)) return l;
        }
    }

    public Path socket() {
        return socket;
    }

    public long pid() {
        return process.pid();
    }

    public Process process() {
        return process;
    }

    public String stderr() {
        return stderr.toString();
    }

    public VfioExportClient connect() throws IOException {
        return VfioExportClient.connect(socket).timeout(20_000);
    }

    /** The daemon's open fds: entries of /proc/PID/fd. */
    public long fdCount() {
        try (Stream<Path> s = Files.list(Path.of("/proc/" + process.pid() + "/fd"))) {
            return s.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * SIGTERM, then the exit code (bounded wait). Sent through the process handle: {@code Process.destroy()} also
     * closes this side of the daemon's stdout and stderr, so what it says while stopping would be lost.
     */
    public int terminate(long timeoutMs) throws InterruptedException {
        process.toHandle().destroy();
        return awaitExit(timeoutMs);
    }

    /** Waits for the exit and for the last of stderr to be read; returns the exit code. */
    public int awaitExit(long timeoutMs) throws InterruptedException {
        if (!process.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
            throw new AssertionError("the daemon did not exit within " + timeoutMs + " ms; stderr: " + stderr);
        }
        stderrPump.join(10_000); // the pipe's end is near: the process is gone
        return process.exitValue();
    }

    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) kill();
        }
    }
}

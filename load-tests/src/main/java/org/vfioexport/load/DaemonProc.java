package org.vfioexport.load;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** The real daemon, as a separate process: started on its own socket and configuration, stopped with SIGTERM. */
final class DaemonProc implements AutoCloseable {
    final Process process;
    final long pid;
    final Path socket;
    final String discipline;
    private final Path log;

    private DaemonProc(Process process, Path socket, String discipline, Path log) {
        this.process = process;
        this.pid = process.pid();
        this.socket = socket;
        this.discipline = discipline;
        this.log = log;
    }

    /**
     * Starts the daemon of {@code home} (its jar, its default configuration with {@code policy} merged in) with
     * {@code discipline}, extra JVM options, in {@code dir}. Returns once it prints "listening on".
     */
    static DaemonProc start(Path home, Path dir, String discipline, JsonObject policy, List<String> jvmOptions)
            throws IOException, InterruptedException {
        return start(home, dir, discipline, policy, new JsonObject(), List.of(), jvmOptions);
    }

    /**
     * As {@link #start(Path, Path, String, JsonObject, List)}, with top-level configuration keys merged in too
     * ({@code max_line_bytes}, ...) and the java command run under {@code wrapper} (e.g. {@code prlimit --nofile=300:300 --}).
     */
    static DaemonProc start(Path home, Path dir, String discipline, JsonObject policy, JsonObject topLevel,
                            List<String> wrapper, List<String> jvmOptions) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        JsonObject conf = new JsonObject(Files.readString(home.resolve("conf/vfio-export.json")));
        topLevel.forEach(en -> conf.put(en.getKey(), en.getValue()));
        JsonObject p = conf.getJsonObject("policy", new JsonObject()).copy();
        policy.forEach(en -> p.put(en.getKey(), en.getValue()));
        conf.put("policy", p);
        Path socket = dir.resolve("vfio-export.sock");
        if (socket.toString().length() > 100) {
            // sun_path holds 108 bytes: a deep work dir (run-all's, under a long checkout path) gets a short one
            Path shortDir = Files.createTempDirectory("vfio-export-load-");
            // the daemon keeps its lock file and audit journal beside the socket: the whole directory goes at exit
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try (var files = Files.walk(shortDir)) {
                    files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                } catch (IOException ignored) {
                    // already gone
                }
            }));
            socket = shortDir.resolve("vfio-export.sock");
        }
        conf.put("socket", socket.toString());
        Path confFile = dir.resolve("vfio-export.json");
        Files.writeString(confFile, conf.encodePrettily());
        List<String> cmd = new ArrayList<>(wrapper);
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("--sun-misc-unsafe-memory-access=allow");
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-jar", home.resolve("target/vfio-export-0.1.0.jar").toString(), "daemon",
                "--conf", confFile.toString(), "--socket", socket.toString(), "--discipline", discipline));
        Path log = dir.resolve("daemon-" + discipline + ".log");
        Process proc = new ProcessBuilder(cmd).directory(home.toFile()).redirectErrorStream(true).start();
        CountDownLatch ready = new CountDownLatch(1);
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8));
                 PrintWriter w = new PrintWriter(Files.newBufferedWriter(log))) {
                String line;
                while ((line = r.readLine()) != null) {
                    w.println(line);
                    w.flush();
                    if (line.contains("listening on")) ready.countDown();
                }
            } catch (IOException ignored) {
                // the daemon went away
            }
        }, "daemon-output");
        t.setDaemon(true);
        t.start();
        if (!ready.await(60, TimeUnit.SECONDS) || !proc.isAlive()) {
            proc.destroyForcibly();
            throw new IOException("the daemon did not start; its log " + log + ":\n" + Files.readString(log));
        }
        return new DaemonProc(proc, socket, discipline, log);
    }

    /** Open fds of the daemon process. */
    long fdCount() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        }
    }

    /** What the daemon's fds point at, counted by kind (for diagnosing a leak). */
    TreeMap<String, Integer> fdKinds() {
        TreeMap<String, Integer> out = new TreeMap<>();
        try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            s.forEach(f -> {
                String k;
                try {
                    k = Files.readSymbolicLink(f).toString().replaceAll("\\[\\d+\\]", "").replaceAll("\\d+", "N");
                } catch (IOException e) {
                    k = "?";
                }
                out.merge(k, 1, Integer::sum);
            });
        } catch (IOException ignored) {
            // gone
        }
        return out;
    }

    JsonObject info() throws IOException {
        try (VfioExportClient c = VfioExportClient.connect(socket)) {
            return c.request("server.info");
        } catch (org.vfioexport.client.vertx.RpcError e) {
            throw new IOException(e);
        }
    }

    /** The last event seq of each device. */
    TreeMap<String, Long> heads() throws IOException {
        TreeMap<String, Long> out = new TreeMap<>();
        try (VfioExportClient c = VfioExportClient.connect(socket)) {
            var list = c.request("device.list").getJsonArray("devices");
            for (int i = 0; i < list.size(); i++) {
                out.put(list.getJsonObject(i).getString("device"), list.getJsonObject(i).getLong("seq"));
            }
        } catch (org.vfioexport.client.vertx.RpcError e) {
            throw new IOException(e);
        }
        return out;
    }

    /** Live heap bytes after a full GC ({@code jcmd GC.class_histogram} forces one), and the top classes. */
    HeapSample heap() throws IOException, InterruptedException {
        Process j = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                String.valueOf(pid), "GC.class_histogram").redirectErrorStream(true).start();
        List<String> lines = new String(j.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        j.waitFor();
        long total = -1;
        TreeMap<String, long[]> classes = new TreeMap<>();
        for (String l : lines) {
            String[] f = l.trim().split("\\s+");
            if (f.length >= 3 && f[0].equals("Total")) total = Long.parseLong(f[2]);
            else if (f.length >= 4 && f[0].endsWith(":")) classes.put(f[3], new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])});
        }
        if (total < 0) throw new IOException("jcmd GC.class_histogram gave no total: " + String.join("\n", lines));
        return new HeapSample(total, classes);
    }

    record HeapSample(long bytes, TreeMap<String, long[]> classes) {}

    String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "";
        }
    }

    /** SIGTERM, then waits; the exit status (non-zero is a failure of the run). */
    int stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(40, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor();
            return -1;
        }
        return process.exitValue();
    }

    @Override
    public void close() {
        if (process.isAlive()) process.destroyForcibly();
    }
}

package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.TestDaemon;
import org.vfioexport.testutil.Wait;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The command-line client against a daemon: as a separate process with the class path {@code bin/vfio-export}
 * gives it (the CLI's classes, picocli and Vert.x's JSON types: nothing else may be needed), and in-process
 * ({@link Cli#run(PrintStream, PrintStream, String...)}, the same code less the JVM start) where many calls are
 * made.
 */
class CliTest {
    @TempDir
    static Path dir;
    static TestDaemon daemon;

    /** Every command, as {@code --help} and {@code help} know them. */
    static final List<String> COMMANDS = List.of("devices", "device", "export", "release", "reset", "memory", "watch",
            "methods", "call", "help");

    @BeforeAll
    static void start() {
        daemon = TestDaemon.start(dir);
    }

    @AfterAll
    static void stop() {
        daemon.close();
    }

    record Run(int exit, String out, String err) {}

    /** The java command line of the CLI, on the class path bin/vfio-export uses (not the daemon's). */
    static List<String> cliCommand(Path socket, String... args) {
        List<String> cp = new ArrayList<>();
        for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
            String name = Path.of(e).getFileName().toString();
            if (e.endsWith("classes") && !e.endsWith("test-classes") || name.startsWith("picocli-4")
                    || name.startsWith("vertx-core-") && !name.contains("logging")) {
                cp.add(e);
            }
        }
        assertEquals(3, cp.size(), "the CLI's class path: " + cp);
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                "-cp", String.join(File.pathSeparator, cp), "org.vfioexport.cli.Cli"));
        if (socket != null) cmd.addAll(List.of("--socket", socket.toString()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    static Process spawn(Path socket, String... args) throws Exception {
        return new ProcessBuilder(cliCommand(socket, args)).start();
    }

    private static Process spawn(String... args) throws Exception {
        return spawn(daemon.socket(), args);
    }

    private static Run run(String... args) throws Exception {
        return finish(spawn(args));
    }

    static Run finish(Process p) throws Exception {
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return new Run(p.exitValue(), out, err);
    }

    /** In-process: the same {@link Cli#run} main calls, against the test daemon unless --socket says otherwise. */
    static Run inProcess(String... args) {
        List<String> a = new ArrayList<>(List.of("--socket", daemon.socket().toString()));
        a.addAll(List.of(args));
        return inProcessRaw(a.toArray(String[]::new));
    }

    static Run inProcessRaw(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int exit = Cli.run(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8), args);
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    // ---- as a process: what people see, and exit statuses ----------------------------------------------------

    @Test
    void devicesPrintsATable() throws Exception {
        Run r = run("devices");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().split("\n");
        assertTrue(lines[0].startsWith("DEVICE        STATE  MEMORY  SEQ  EXPORTS  RESET  NAME"), r.out());
        assertTrue(lines[1].startsWith(NVME + "  ready"), r.out());
        assertEquals(3, lines.length);
        assertEquals("", r.err());
    }

    @Test
    void exitStatusesSayWhatWentWrong() throws Exception {
        Run rpc = run("device", "0000:09:00.0");
        assertEquals(Exit.RPC_ERROR, rpc.exit());
        assertEquals("vfio-export: error: no such device: 0000:09:00.0 (error -32001)\n", rpc.err());

        Run size = run("export", NVME, "--region", "2", "--length", "lots");
        assertEquals(Exit.USAGE, size.exit());
        assertTrue(size.err().startsWith("vfio-export: Invalid value for option '--length': not a size: 'lots'"), size.err());
        Run option = run("devices", "--bogus");
        assertEquals(Exit.USAGE, option.exit());
        assertEquals("vfio-export: Unknown option: '--bogus' (see 'vfio-export devices --help')\n", option.err());
        Run command = run("explode");
        assertEquals(Exit.USAGE, command.exit());
        assertTrue(command.err().startsWith("vfio-export: Unmatched argument at index 2: 'explode'"), command.err());

        Run none = finish(spawn(dir.resolve("nobody.sock"), "devices"));
        assertEquals(Exit.NO_DAEMON, none.exit());
        assertEquals("vfio-export: error: cannot connect to " + dir.resolve("nobody.sock")
                + ": no such socket (is vfio-exportd running?), ENOENT (errno 2)\n", none.err());
        assertEquals("", none.out());
    }

    @Test
    void resetMemoryAndMethods() throws Exception {
        Run reset = run("reset", NVME);
        assertEquals(0, reset.exit(), reset.err());
        assertTrue(reset.out().startsWith("reset " + NVME + ": revoked 0, restored 0, "), reset.out());
        Run off = run("memory", NVME, "off");
        assertEquals("memory off for " + NVME + ": revoked 0, restored 0\n", off.out());
        Run on = run("memory", NVME, "on");
        assertEquals("memory on for " + NVME + ": revoked 0, restored 0\n", on.out());
        Run methods = run("methods");
        assertTrue(methods.out().startsWith("rpc.methods\nserver.info\n"), methods.out());
    }

    @Test
    void exportHoldsTheExportUntilInterrupted() throws Exception {
        int before = daemon.daemon().service().devices().liveExports();
        Process p = spawn("export", NVME, "--region", "2", "--offset", "4K", "--length", "2M");
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String first = out.readLine();
        assertTrue(first != null && first.startsWith("exported ") && first.contains("0x1000+0x200000") && first.endsWith("(2 MiB)"),
                String.valueOf(first));
        assertEquals("holding it; press Ctrl-C to release", out.readLine());
        assertEquals(before + 1, daemon.daemon().service().devices().liveExports());
        p.toHandle().destroy(); // SIGTERM, like Ctrl-C (Process.destroy would also close our end of its output)
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());
        assertTrue(out.readLine().startsWith("released "));
        Wait.untilEquals("the export released", 10_000, before, () -> daemon.daemon().service().devices().liveExports());
    }

    @Test
    void exportPrintsTheRevocationsAndRestoresOfItsExport() throws Exception {
        Process p = spawn("export", "01:00.0", "--region", "2", "--length", "4K");
        try (VfioExportClient c = daemon.connect()) {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String first = out.readLine();
            assertTrue(first != null && first.startsWith("exported " + NVME + "/"), String.valueOf(first));
            String id = first.substring("exported ".length(), first.indexOf(':', "exported 0000:01:00.0".length()));
            assertEquals("holding it; press Ctrl-C to release", out.readLine());
            c.request("device.reset", new JsonObject().put("device", NVME));
            assertEquals("revoked " + id + " (reset)", out.readLine());
            assertEquals("restored " + id + " (reset)", out.readLine());
            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false));
            assertEquals("revoked " + id + " (memory-disable)", out.readLine());
            c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));
            assertEquals("restored " + id + " (memory-enable)", out.readLine());
            p.toHandle().destroy();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue());
            assertEquals("released " + id, out.readLine());
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void watchPrintsEventsAsJson() throws Exception {
        Process p = spawn("watch", "--json");
        try (VfioExportClient c = daemon.connect()) {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            // the watcher subscribes after it connects: reset until it reports an event
            Wait.until("the watcher to be subscribed", 30_000, () -> {
                try {
                    return c.request("server.info").getInteger("subscribers") > 0;
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            c.request("device.reset", new JsonObject().put("device", NVME));
            JsonObject e = new JsonObject(out.readLine());
            assertEquals(NVME, e.getString("device"));
            assertEquals("device.state", e.getString("type"));
            assertEquals("resetting", e.getString("state"));
        } finally {
            p.destroy();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }

    // ---- in-process: every command's help, JSON and errors ----------------------------------------------------

    @Test
    void everyCommandHasHelpAndHelpCommandSaysTheSame() {
        Run root = inProcessRaw("--help");
        assertEquals(0, root.exit());
        assertTrue(root.out().startsWith("Usage: vfio-export [-hV]"), root.out());
        for (String command : COMMANDS) {
            assertTrue(root.out().contains("\n  " + command + " "), "root help lists " + command + ": " + root.out());
            Run help = inProcessRaw(command, "--help");
            assertEquals(0, help.exit(), command + ": " + help.err());
            assertEquals("", help.err(), command);
            assertTrue(help.out().startsWith("Usage: vfio-export " + command + " [-hV] [--json]"), command + ": " + help.out());
            for (String option : List.of("--socket=PATH", "--json", "-t, --timeout=SECONDS", "-r, --retries=N", "-h, --help")) {
                assertTrue(help.out().contains(option), command + " has " + option);
            }
            assertTrue(help.out().contains("Exit status:\n   0   success\n"), command + ": " + help.out());
            assertEquals(help, inProcessRaw(command, "-h"), command);
            assertEquals(help, inProcessRaw("help", command), command);
        }
        assertEquals(root, inProcessRaw("help"));
        Run unknown = inProcessRaw("help", "explode");
        assertEquals(Exit.USAGE, unknown.exit());
        assertTrue(unknown.err().startsWith("vfio-export: no command 'explode'; there are devices, device, "), unknown.err());
        Run nothing = inProcessRaw();
        assertEquals(Exit.USAGE, nothing.exit());
        assertEquals("vfio-export: a command is missing (see 'vfio-export --help')\n", nothing.err());
        assertEquals(new Run(0, "vfio-export 0.1.0\n", ""), inProcessRaw("export", "--version"));
    }

    @Test
    void everyCommandSpeaksJson() throws Exception {
        JsonObject devices = json(inProcess("devices", "--json"));
        assertEquals(NVME, devices.getJsonArray("devices").getJsonObject(0).getString("device"));
        assertEquals(devices, json(inProcess("--json", "devices")), "--json before the command too");

        JsonObject device = json(inProcess("device", "--json", "01:00.0"));
        assertEquals(NVME, device.getString("device"));
        assertEquals(9, device.getJsonArray("regions").size());
        JsonObject reset = json(inProcess("--json", "reset", NVME));
        assertEquals(NVME, reset.getString("device"));
        assertEquals(0, reset.getInteger("revoked"));
        JsonObject memory = json(inProcess("--json", "memory", NVME, "on"));
        assertEquals(true, memory.getBoolean("memory_enabled"));
        JsonObject methods = json(inProcess("--json", "methods"));
        assertEquals("rpc.methods", methods.getJsonArray("methods").getString(0));
        JsonObject info = json(inProcess("--json", "call", "server.info"));
        assertEquals("sim", info.getString("backend"));

        Run release = inProcess("--json", "release", NVME + "/999999");
        assertEquals(Exit.RPC_ERROR, release.exit());
        assertEquals("", release.out());
        JsonObject error = new JsonObject(release.err().strip()).getJsonObject("error");
        assertEquals(-32002, error.getInteger("code"));
        assertEquals(NVME + "/999999", error.getJsonObject("data").getString("export_id"));

        Run none = inProcessRaw("--json", "--socket", dir.resolve("nobody.sock").toString(), "devices");
        assertEquals(Exit.NO_DAEMON, none.exit());
        assertTrue(new JsonObject(none.err().strip()).getJsonObject("error").getString("message")
                .contains("no such socket"), none.err());
        // export and watch print JSON lines as they go: see the process tests
    }

    private static JsonObject json(Run r) {
        assertEquals(0, r.exit(), r.err());
        assertEquals("", r.err());
        assertEquals(1, r.out().lines().count(), "one line: " + r.out());
        return new JsonObject(r.out());
    }

    @Test
    void callReachesEveryMethod() throws Exception {
        Run info = inProcess("call", "server.info");
        assertEquals(0, info.exit(), info.err());
        JsonObject i = new JsonObject(info.out());
        assertTrue(info.out().startsWith("{\n  \"version\": "), "indented for people: " + info.out());
        assertEquals("sim", i.getString("backend"));

        Run list = inProcess("call", "export.list", "{\"device\":\"" + NVME + "\"}");
        assertEquals(new JsonArray(), new JsonObject(list.out()).getJsonArray("exports"));
        Run get = inProcess("call", "export.get", "{\"export_id\":\"" + NVME + "/12345\"}");
        assertEquals(Exit.RPC_ERROR, get.exit());
        assertEquals("vfio-export: error: no such export: " + NVME + "/12345 (error -32002)\n", get.err());

        // importer.* (sim only): an attach needs an export of the same connection, so this one is refused
        Run attach = inProcess("call", "importer.attach", "{\"export_id\":\"" + NVME + "/12345\"}");
        assertEquals(Exit.RPC_ERROR, attach.exit());
        assertTrue(attach.err().endsWith("(error -32002)\n"), attach.err());

        // an export made by call is the connection's: it ends with the command
        int before = daemon.daemon().service().devices().liveExports();
        Run create = inProcess("call", "export.create", "{\"device\":\"" + NVME + "\",\"region\":2,\"offset\":0,\"length\":4096}");
        assertEquals(0, create.exit(), create.err());
        assertEquals("live", new JsonObject(create.out()).getString("state"));
        assertTrue(create.err().contains("the fd was not received"), create.err());
        Wait.untilEquals("the export of the call released", 10_000, before,
                () -> daemon.daemon().service().devices().liveExports());

        Run notObject = inProcess("call", "device.get", "[1]");
        assertEquals(Exit.USAGE, notObject.exit());
        assertTrue(notObject.err().startsWith("vfio-export: PARAMS-JSON must be a JSON object"), notObject.err());
        Run unknown = inProcess("call", "device.explode");
        assertEquals(Exit.RPC_ERROR, unknown.exit());
        assertTrue(unknown.err().endsWith("(error -32601)\n"), unknown.err());
    }

    @Test
    void kernelErrorsNameTheErrnoWithItsNumber() {
        Run r = inProcess("call", "export.create", "{\"device\":\"" + NVME + "\",\"region\":7,\"offset\":0,\"length\":4096}");
        assertEquals(Exit.RPC_ERROR, r.exit());
        assertTrue(r.err().endsWith("(error -32000, ENODEV (errno 19))\n"), r.err());
    }

    @Test
    void lspciShortAddressesName0000Devices() {
        Run r = inProcess("device", "01:00.0");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("device   " + NVME + "\n"), r.out());
        Run upper = inProcess("reset", "0000:01:00.0".toUpperCase());
        assertEquals(0, upper.exit(), upper.err());
    }
}

package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.ExportedBuffer;
import org.vfioexport.client.RpcError;
import org.vfioexport.client.VfioExportClient;
import org.vfioexport.ffm.posix.Posix;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import sun.misc.Signal;

import java.io.IOException;
import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vfio-export}: the command-line client. Errors are one line on stderr and a non-zero exit. */
@Command(name = "vfio-export", mixinStandardHelpOptions = true, version = "vfio-export 0.1.0",
        description = "Talks to vfio-exportd: lists devices, exports BAR slices as dma-buf fds, resets, watches events.",
        subcommands = {Cli.Devices.class, Cli.Device.class, Cli.Export.class, Cli.Release.class, Cli.Reset.class,
                Cli.Memory.class, Cli.Watch.class, Cli.Methods.class})
public final class Cli {
    static final String DEFAULT_SOCKET = "run/vfio-export.sock";

    @Option(names = "--socket", paramLabel = "PATH", scope = CommandLine.ScopeType.INHERIT,
            description = "the daemon's socket (default: $VFIO_EXPORT_SOCKET or " + DEFAULT_SOCKET + ")")
    Path socket;

    PrintStream out = System.out;

    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Cli());
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            String msg = switch (e) {
                case RpcError r -> r.getMessage() + " (error " + r.code() + ")";
                case IOException io -> io.getMessage();
                case IllegalArgumentException ia -> ia.getMessage();
                default -> e.toString();
            };
            cmd.getErr().println("vfio-export: error: " + msg);
            return 1;
        });
        return cl.execute(args);
    }

    VfioExportClient connect() throws IOException {
        Path p = socket;
        if (p == null) {
            String env = System.getenv("VFIO_EXPORT_SOCKET");
            p = Path.of(env != null && !env.isEmpty() ? env : DEFAULT_SOCKET);
        }
        return VfioExportClient.connect(p);
    }

    static Object u64(long v) {
        return v >= 0 ? (Object) v : new BigInteger(Long.toUnsignedString(v));
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    /** SIGINT and SIGTERM caught from the moment it is made, so one arriving early is not lost. */
    static final class Interrupt {
        private final java.util.concurrent.CountDownLatch fired = new java.util.concurrent.CountDownLatch(1);

        Interrupt() {
            Signal.handle(new Signal("INT"), s -> fired.countDown());
            Signal.handle(new Signal("TERM"), s -> fired.countDown());
        }

        void await() throws InterruptedException {
            fired.await();
        }
    }

    @Command(name = "devices", description = "List the devices this client may see.")
    static final class Devices implements Callable<Integer> {
        @ParentCommand Cli cli;

        @Override
        public Integer call() throws Exception {
            try (VfioExportClient c = cli.connect()) {
                JsonArray devices = c.request("device.list").getJsonArray("devices");
                Table t = new Table("DEVICE", "STATE", "MEMORY", "SEQ", "EXPORTS", "RESET", "NAME");
                for (int i = 0; i < devices.size(); i++) {
                    JsonObject d = devices.getJsonObject(i);
                    t.row(d.getString("device"), d.getString("state"), d.getBoolean("memory_enabled") ? "on" : "off",
                            d.getLong("seq"), d.getInteger("exports"), d.getBoolean("reset_supported", false) ? "yes" : "no",
                            d.getString("name"));
                }
                t.print(cli.out);
            }
            return 0;
        }
    }

    @Command(name = "device", description = "Show one device and its regions.")
    static final class Device implements Callable<Integer> {
        @ParentCommand Cli cli;
        @Parameters(paramLabel = "DEVICE", description = "PCI address, e.g. 0000:01:00.0") String device;

        @Override
        public Integer call() throws Exception {
            try (VfioExportClient c = cli.connect()) {
                JsonObject d = c.request("device.get", new JsonObject().put("device", device));
                PrintStream o = cli.out;
                o.println("device   " + d.getString("device"));
                o.println("name     " + d.getString("name"));
                o.println("backend  " + d.getString("backend"));
                o.println("state    " + d.getString("state"));
                o.println("memory   " + (d.getBoolean("memory_enabled") ? "on" : "off"));
                o.println("reset    " + (d.getBoolean("reset_supported", false) ? "supported" : "not supported"));
                o.println("seq      " + d.getLong("seq"));
                o.println("exports  " + d.getInteger("exports"));
                o.println();
                Table t = new Table("REGION", "NAME", "KIND", "SIZE", "BYTES", "MMAP", "PREFETCH");
                JsonArray regions = d.getJsonArray("regions");
                for (int i = 0; i < regions.size(); i++) {
                    JsonObject r = regions.getJsonObject(i);
                    long size = r.getLong("size");
                    t.row(r.getInteger("index"), r.getString("name"), r.getString("kind"), Sizes.human(size), hex(size),
                            r.getBoolean("mmap") ? "yes" : "no", r.getBoolean("prefetchable") ? "yes" : "no");
                }
                t.print(o);
            }
            return 0;
        }
    }

    @Command(name = "export", description = "Export a BAR slice as a dma-buf and hold it (and the fd) until interrupted.")
    static final class Export implements Callable<Integer> {
        @ParentCommand Cli cli;
        @Parameters(paramLabel = "DEVICE") String device;
        @Option(names = "--region", required = true, paramLabel = "N", description = "BAR index") String region;
        @Option(names = "--offset", defaultValue = "0", paramLabel = "X", description = "offset in the BAR (4096, 0x1000, 4K)")
        String offset;
        @Option(names = "--length", required = true, paramLabel = "Y", description = "length (4096, 0x2000, 2M)") String length;

        @Override
        public Integer call() throws Exception {
            JsonObject params = new JsonObject().put("device", device).put("region", u64(Sizes.parse(region)))
                    .put("offset", u64(Sizes.parse(offset))).put("length", u64(Sizes.parse(length)));
            try (VfioExportClient c = cli.connect()) {
                Interrupt interrupt = new Interrupt();
                ExportedBuffer b = c.export(params);
                long size = Posix.lseek(b.fd(), 0, Posix.SEEK_END);
                cli.out.println("exported " + b.id() + ": " + device + " region " + region + " " + hex(Sizes.parse(offset))
                        + "+" + hex(Sizes.parse(length)) + ", state " + b.export().getString("state") + ", fd " + b.fd()
                        + " (" + Sizes.human(size) + ")");
                cli.out.println("holding it; press Ctrl-C to release");
                cli.out.flush();
                interrupt.await();
                try {
                    c.request("export.release", new JsonObject().put("export_id", b.id()));
                    cli.out.println("released " + b.id());
                } catch (RpcError e) {
                    cli.out.println(b.id() + " was already gone: " + e.getMessage());
                }
                Posix.close(b.fd());
            }
            return 0;
        }
    }

    @Command(name = "release", description = "Release an export of this connection (exports belong to the connection that made them).")
    static final class Release implements Callable<Integer> {
        @ParentCommand Cli cli;
        @Parameters(paramLabel = "EXPORT") String export;

        @Override
        public Integer call() throws Exception {
            try (VfioExportClient c = cli.connect()) {
                c.request("export.release", new JsonObject().put("export_id", export));
                cli.out.println("released " + export);
            }
            return 0;
        }
    }

    @Command(name = "reset", description = "Reset a device (its exports are revoked, then restored).")
    static final class Reset implements Callable<Integer> {
        @ParentCommand Cli cli;
        @Parameters(paramLabel = "DEVICE") String device;

        @Override
        public Integer call() throws Exception {
            try (VfioExportClient c = cli.connect()) {
                JsonObject r = c.request("device.reset", new JsonObject().put("device", device));
                cli.out.println("reset " + device + ": revoked " + r.getInteger("revoked") + ", restored "
                        + r.getInteger("restored") + ", " + r.getLong("duration_us") + " us");
            }
            return 0;
        }
    }

    @Command(name = "memory", description = "Turn a device's PCI memory decoding on or off.")
    static final class Memory implements Callable<Integer> {
        @ParentCommand Cli cli;
        @Parameters(index = "0", paramLabel = "DEVICE") String device;
        @Parameters(index = "1", paramLabel = "on|off") String state;

        @Override
        public Integer call() throws Exception {
            boolean on = switch (state) {
                case "on" -> true;
                case "off" -> false;
                default -> throw new IllegalArgumentException("memory state must be on or off, not '" + state + "'");
            };
            try (VfioExportClient c = cli.connect()) {
                JsonObject r = c.request("device.set_memory", new JsonObject().put("device", device).put("enabled", on));
                cli.out.println("memory " + (r.getBoolean("memory_enabled") ? "on" : "off") + " for " + device
                        + ": revoked " + r.getInteger("revoked") + ", restored " + r.getInteger("restored"));
            }
            return 0;
        }
    }

    @Command(name = "watch", description = "Print events until interrupted.")
    static final class Watch implements Callable<Integer> {
        @ParentCommand Cli cli;
        @Option(names = "--json", description = "one JSON event per line") boolean json;
        @Option(names = "--device", paramLabel = "DEVICE", description = "only these devices (repeatable)") java.util.List<String> devices;

        @Override
        public Integer call() throws Exception {
            try (VfioExportClient c = cli.connect()) {
                JsonObject params = new JsonObject();
                if (devices != null) params.put("devices", new JsonArray(devices));
                JsonObject sub = c.request("events.subscribe", params);
                if (!json) {
                    cli.out.println("watching " + sub.getString("subscription") + ", heads " + sub.getJsonObject("heads").encode());
                    cli.out.printf("%-27s %-14s %6s  %-16s %-16s %-14s %s%n", "TIME", "DEVICE", "SEQ", "TYPE", "EXPORT", "CAUSE", "STATE");
                }
                cli.out.flush();
                while (true) {
                    JsonObject e;
                    try {
                        e = c.nextEvent(60_000);
                    } catch (VfioExportClient.TimeoutIOException quiet) {
                        continue; // no event for a minute: keep watching
                    } catch (java.io.EOFException eof) {
                        return 0; // the daemon stopped
                    }
                    if (json) cli.out.println(e.encode());
                    else cli.out.printf("%-27s %-14s %6s  %-16s %-16s %-14s %s%n", e.getString("time"), e.getString("device"),
                            e.containsKey("seq") ? e.getLong("seq") : "-", e.getString("type"),
                            e.getString("export_id", "-"), e.getString("cause", "-"), e.containsKey("from_seq")
                                    ? "lost " + e.getLong("from_seq") + ".." + e.getLong("to_seq") : e.getString("state", ""));
                    cli.out.flush();
                }
            }
        }
    }

    @Command(name = "methods", description = "List the server's methods.")
    static final class Methods implements Callable<Integer> {
        @ParentCommand Cli cli;

        @Override
        public Integer call() throws Exception {
            try (VfioExportClient c = cli.connect()) {
                JsonArray m = c.request("rpc.methods").getJsonArray("methods");
                for (int i = 0; i < m.size(); i++) cli.out.println(m.getString(i));
            }
            return 0;
        }
    }
}

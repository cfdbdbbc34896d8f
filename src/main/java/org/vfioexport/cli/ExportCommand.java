package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.posix.PosixException;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.io.EOFException;
import java.io.IOException;
import java.util.concurrent.Callable;

/**
 * Holds one export for as long as it runs, and watches it: the export lives exactly as long as this command's
 * connection, so the command must not claim to hold what the daemon has taken back. It subscribes to the device's
 * events before exporting (so none about the export is missed) and reports each revoke and restore; a release by
 * the daemon ends it with status 4, a lost connection with status 3, each with a line saying so.
 */
final class ExportCommand implements Callable<Integer> {
    /** How often the wait for events looks whether Ctrl-C was pressed: the delay before the release starts. */
    private static final long SLICE_MS = 100;

    private final Cli cli;
    private final PositionalParamSpec device = Cli.device(0);
    private final OptionSpec regionOption = size("--region", "N", true, "the BAR index");
    private final OptionSpec offsetOption = size("--offset", "X", false, "offset in the BAR: 4096, 0x1000, 4K (default: 0)");
    private final OptionSpec lengthOption = size("--length", "Y", true, "length: 4096, 0x2000, 2M");
    private long region, offset, length;

    ExportCommand(Cli cli) {
        this.cli = cli;
    }

    private static OptionSpec size(String name, String label, boolean required, String description) {
        return OptionSpec.builder(name).paramLabel(label).type(Long.class).converters(new Sizes.Converter())
                .required(required).description(description).build();
    }

    CommandSpec spec() {
        CommandSpec c = Cli.command(this, "export",
                "Export a BAR slice as a dma-buf and hold it, with its fd, until interrupted (Ctrl-C, SIGTERM); then "
                        + "release it (export.create, export.release).",
                "Meanwhile it prints the export's revocations and restores (resets, memory off and on). It ends "
                        + "with status 4 when the daemon releases the export (shutdown, device close) and 3 when the "
                        + "daemon goes away.",
                "With --json: the export object, then one event object per line, then the release result.");
        c.addPositional(device).addOption(regionOption).addOption(offsetOption).addOption(lengthOption);
        return c;
    }

    @Override
    public Integer call() throws Exception {
        String d = PciAddress.normalise(device.getValue());
        region = regionOption.getValue();
        Long o = offsetOption.getValue();
        offset = o == null ? 0 : o;
        length = lengthOption.getValue();
        JsonObject params = new JsonObject().put("device", d).put("region", Cli.u64(region))
                .put("offset", Cli.u64(offset)).put("length", Cli.u64(length));
        try (VfioExportClient c = cli.connect(true)) {
            Interrupt interrupt = new Interrupt();
            c.request("events.subscribe", new JsonObject().put("devices", new JsonArray().add(d)));
            ExportedBuffer b = c.export(params);
            try {
                announce(b, d);
                return hold(c, b, interrupt);
            } finally {
                Fd.closeQuietly(b.fd()); // exiting anyway
            }
        }
    }

    private void announce(ExportedBuffer b, String d) throws PosixException {
        if (cli.json()) {
            cli.printJson(b.export());
            return;
        }
        long size = b.fd().size();
        cli.out.println("exported " + b.id() + ": " + d + " region " + Long.toUnsignedString(region) + " "
                + Cli.hex(offset) + "+" + Cli.hex(length) + ", state " + b.export().getString("state") + ", "
                + b.fd() + " (" + Sizes.human(size) + ")");
        cli.out.println("holding it; press Ctrl-C to release");
        cli.out.flush();
    }

    private int hold(VfioExportClient c, ExportedBuffer b, Interrupt interrupt) throws IOException, InterruptedException {
        while (!interrupt.fired()) {
            JsonObject e;
            try {
                e = c.nextEvent(SLICE_MS);
            } catch (org.vfioexport.client.TimeoutIOException quiet) {
                continue;
            } catch (EOFException eof) {
                return lost(b, Exit.NO_DAEMON, Failure.DAEMON_GONE + ": " + b.id() + " is gone");
            }
            String type = e.getString("type");
            if ("events.lost".equals(type)) { // one of them may have been about this export: ask
                if (!stillExported(c, b.id())) return lost(b, Exit.EXPORT_LOST, b.id() + " was released by the daemon");
                continue;
            }
            if (!b.id().equals(e.getString("export_id"))) continue;
            switch (type) {
                case "export.revoked", "export.restored" -> {
                    if (cli.json()) cli.printJson(e);
                    else cli.out.println((type.equals("export.revoked") ? "revoked " : "restored ") + b.id()
                            + " (" + e.getString("cause") + ")");
                    cli.out.flush();
                }
                case "export.released" -> {
                    if (cli.json()) cli.printJson(e);
                    return lost(b, Exit.EXPORT_LOST, b.id() + " was released by the daemon (cause "
                            + e.getString("cause") + ")");
                }
                default -> { } // export.created: we know
            }
        }
        return release(c, b);
    }

    private int release(VfioExportClient c, ExportedBuffer b) throws IOException {
        try {
            JsonObject r = c.request("export.release", new JsonObject().put("export_id", b.id()));
            if (cli.json()) cli.printJson(r);
            else cli.out.println("released " + b.id());
            cli.out.flush();
            return Exit.OK;
        } catch (RpcError e) {
            return lost(b, Exit.EXPORT_LOST, b.id() + " was already released by the daemon: " + e.getMessage());
        } catch (IOException e) { // the daemon went away since the last look: nothing left to release
            return lost(b, Exit.NO_DAEMON, Failure.DAEMON_GONE + ": " + b.id() + " is gone (" + e.getMessage() + ")");
        }
    }

    private boolean stillExported(VfioExportClient c, String id) throws IOException {
        try {
            c.request("export.get", new JsonObject().put("export_id", id));
            return true;
        } catch (RpcError e) {
            return false;
        }
    }

    /** Says why the export is no longer held, on stderr (JSON with --json), and returns {@code status}. */
    private int lost(ExportedBuffer b, int status, String why) {
        cli.out.flush();
        if (cli.json()) {
            cli.err.println(org.vfioexport.client.vertx.JsonText.encode(new JsonObject().put("error",
                    new JsonObject().put("message", why).put("export_id", b.id()))));
        } else {
            cli.err.println("vfio-export: " + why);
        }
        cli.err.flush();
        return status;
    }
}

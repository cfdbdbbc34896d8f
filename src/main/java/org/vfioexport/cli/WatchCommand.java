package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.JsonText;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.io.EOFException;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code watch}: events.subscribe, then every event as a row (or a JSON line) until interrupted. */
final class WatchCommand implements Callable<Integer> {
    private static final String ROW = "%-27s %-14s %6s  %-16s %-16s %-14s %s%n";

    private final Cli cli;
    private final OptionSpec devices = OptionSpec.builder("--device").paramLabel("DEVICE").type(List.class)
            .auxiliaryTypes(String.class).description("only this device (repeatable; lspci's 01:00.0 works)").build();

    WatchCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        CommandSpec c = Cli.command(this, "watch", "Print events until interrupted (events.subscribe).",
                "With --json, one event object per line. Ends with status 3 when the daemon goes away.");
        c.addOption(devices);
        return c;
    }

    @Override
    public Integer call() throws Exception {
        try (VfioExportClient c = cli.connect()) {
            JsonObject params = new JsonObject();
            List<String> only = devices.getValue();
            if (only != null) params.put("devices", new JsonArray(only.stream().map(PciAddress::normalise).toList()));
            JsonObject sub = c.request("events.subscribe", params);
            if (!cli.json()) {
                cli.out.println("watching " + sub.getString("subscription") + ", heads " + JsonText.encode(sub.getJsonObject("heads")));
                cli.out.printf(ROW, "TIME", "DEVICE", "SEQ", "TYPE", "EXPORT", "CAUSE", "STATE");
            }
            cli.out.flush();
            while (true) {
                JsonObject e;
                try {
                    e = c.nextEvent(60_000);
                } catch (org.vfioexport.client.TimeoutIOException quiet) {
                    continue; // no event for a minute: keep watching
                } catch (EOFException eof) {
                    cli.out.flush();
                    throw eof; // the daemon went away: status 3 and a line saying so
                }
                if (cli.json()) cli.out.println(JsonText.encode(e));
                else cli.out.printf(ROW, e.getString("time"), e.getString("device"),
                        e.containsKey("seq") ? e.getLong("seq") : "-", e.getString("type"),
                        e.getString("export_id", "-"), e.getString("cause", "-"), e.containsKey("from_seq")
                                ? "lost " + e.getLong("from_seq") + ".." + e.getLong("to_seq") : e.getString("state", ""));
                cli.out.flush();
            }
        }
    }
}

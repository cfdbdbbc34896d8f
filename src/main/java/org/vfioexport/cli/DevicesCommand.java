package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;

import java.util.concurrent.Callable;

/** {@code devices}: device.list as a table. */
final class DevicesCommand implements Callable<Integer> {
    private final Cli cli;

    DevicesCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        return Cli.command(this, "devices", "List the devices this client may see (device.list).");
    }

    @Override
    public Integer call() throws Exception {
        try (VfioExportClient c = cli.connect()) {
            JsonObject r = c.request("device.list");
            if (cli.json()) {
                cli.printJson(r);
                return Exit.OK;
            }
            JsonArray devices = r.getJsonArray("devices");
            Table t = new Table("DEVICE", "STATE", "MEMORY", "SEQ", "EXPORTS", "RESET", "NAME");
            for (int i = 0; i < devices.size(); i++) {
                JsonObject d = devices.getJsonObject(i);
                t.row(d.getString("device"), d.getString("state"), d.getBoolean("memory_enabled") ? "on" : "off",
                        d.getLong("seq"), d.getInteger("exports"), d.getBoolean("reset_supported", false) ? "yes" : "no",
                        d.getString("name"));
            }
            t.print(cli.out);
        }
        return Exit.OK;
    }
}

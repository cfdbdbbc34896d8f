package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.io.PrintStream;
import java.util.concurrent.Callable;

/** {@code device DEVICE}: device.get, the device and its region table. */
final class DeviceCommand implements Callable<Integer> {
    private final Cli cli;
    private final PositionalParamSpec device = Cli.device(0);

    DeviceCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        return Cli.command(this, "device", "Show one device and its regions (device.get).").addPositional(device);
    }

    @Override
    public Integer call() throws Exception {
        try (VfioExportClient c = cli.connect()) {
            JsonObject d = c.request("device.get", new JsonObject().put("device", PciAddress.normalise(device.getValue())));
            if (cli.json()) {
                cli.printJson(d);
                return Exit.OK;
            }
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
            Table t = new Table("REGION", "NAME", "KIND", "SIZE", "BYTES", "MMAP", "PREFETCH", "ADDRESS");
            JsonArray regions = d.getJsonArray("regions");
            for (int i = 0; i < regions.size(); i++) {
                JsonObject r = regions.getJsonObject(i);
                long size = r.getLong("size");
                t.row(r.getInteger("index"), r.getString("name"), r.getString("kind"), Sizes.human(size), Cli.hex(size),
                        r.getBoolean("mmap") ? "yes" : "no", r.getBoolean("prefetchable") ? "yes" : "no",
                        r.getValue("address") instanceof Number a && a.longValue() != 0 ? Cli.hex(a.longValue()) : "-");
            }
            t.print(o);
        }
        return Exit.OK;
    }
}

package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.util.concurrent.Callable;

/** {@code reset DEVICE}: device.reset. */
final class ResetCommand implements Callable<Integer> {
    private final Cli cli;
    private final PositionalParamSpec device = Cli.device(0);

    ResetCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        return Cli.command(this, "reset", "Reset a device (device.reset): its exports are revoked, then restored.")
                .addPositional(device);
    }

    @Override
    public Integer call() throws Exception {
        String d = PciAddress.normalise(device.getValue());
        try (VfioExportClient c = cli.connect()) {
            JsonObject r = c.request("device.reset", new JsonObject().put("device", d));
            if (cli.json()) cli.printJson(r);
            else cli.out.println("reset " + d + ": revoked " + r.getInteger("revoked") + ", restored "
                    + r.getInteger("restored") + ", " + r.getLong("duration_us") + " us");
        }
        return Exit.OK;
    }
}

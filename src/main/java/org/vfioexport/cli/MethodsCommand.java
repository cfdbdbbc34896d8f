package org.vfioexport.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;

import java.util.concurrent.Callable;

/** {@code methods}: rpc.methods. */
final class MethodsCommand implements Callable<Integer> {
    private final Cli cli;

    MethodsCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        return Cli.command(this, "methods", "List the daemon's methods (rpc.methods); 'call' calls any of them.");
    }

    @Override
    public Integer call() throws Exception {
        try (VfioExportClient c = cli.connect()) {
            JsonObject r = c.request("rpc.methods");
            if (cli.json()) {
                cli.printJson(r);
                return Exit.OK;
            }
            JsonArray m = r.getJsonArray("methods");
            for (int i = 0; i < m.size(); i++) cli.out.println(m.getString(i));
        }
        return Exit.OK;
    }
}

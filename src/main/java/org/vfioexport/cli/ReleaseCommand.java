package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.util.concurrent.Callable;

/** {@code release EXPORT}: export.release, which only an export of the same connection passes. */
final class ReleaseCommand implements Callable<Integer> {
    private final Cli cli;
    private final PositionalParamSpec export = PositionalParamSpec.builder().index("0").paramLabel("EXPORT")
            .type(String.class).required(true).description("the export_id").build();

    ReleaseCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        return Cli.command(this, "release", "Release an export (export.release).",
                "Exports belong to the connection that made them, so this succeeds only for an export of its own "
                        + "connection: another's answers -32002. To let go of an export held by 'export', "
                        + "interrupt that.").addPositional(export);
    }

    @Override
    public Integer call() throws Exception {
        try (VfioExportClient c = cli.connect()) {
            String id = export.getValue();
            JsonObject r = c.request("export.release", new JsonObject().put("export_id", id));
            if (cli.json()) cli.printJson(r);
            else cli.out.println("released " + id);
        }
        return Exit.OK;
    }
}

package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.JsonText;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParameterException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code call METHOD [PARAMS-JSON]}: any method, for the ones no other command covers and for scripts. */
final class CallCommand implements Callable<Integer> {
    /** The methods of protocol version 1 (importer.* only where the backend has an importer), for completion. */
    static final class KnownMethods implements Iterable<String> {
        static final List<String> ALL = List.of("rpc.methods", "server.info", "device.list", "device.get",
                "device.reset", "device.set_memory", "export.create", "export.release", "export.get", "export.list",
                "export.watch", "export.quiesced",
                "events.subscribe", "events.unsubscribe", "importer.attach", "importer.map", "importer.unmap",
                "importer.get", "importer.detach");

        @Override
        public java.util.Iterator<String> iterator() {
            return ALL.iterator();
        }
    }

    private final Cli cli;
    private final PositionalParamSpec method = PositionalParamSpec.builder().index("0").paramLabel("METHOD")
            .type(String.class).required(true).completionCandidates(new KnownMethods())
            .description("the method, as 'methods' lists them").build();
    private final PositionalParamSpec params = PositionalParamSpec.builder().index("1").arity("0..1")
            .paramLabel("PARAMS-JSON").type(String.class)
            .description("its params: a JSON object, or - to read one from stdin (default: none)").build();
    private CommandSpec spec;

    CallCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        spec = Cli.command(this, "call",
                "Call any method of the daemon and print its result: indented JSON, or one line with --json.",
                "Examples:  call server.info;  call export.list '{\"device\":\"0000:01:00.0\"}';  "
                        + "echo '{\"device\":\"0000:01:00.0\"}' | vfio-export call device.get -",
                "Fds are not received here: an export.create made by 'call' is released when the command exits "
                        + "('export' holds one).").addPositional(method).addPositional(params);
        return spec;
    }

    @Override
    public Integer call() throws Exception {
        JsonObject p = params();
        try (VfioExportClient c = cli.connect()) {
            JsonObject response = c.call(method.getValue(), p).object();
            if (response.getValue("error") instanceof JsonObject error) throw RpcError.of(error);
            Object result = response.getValue("result");
            if (cli.json()) cli.printJson(result);
            else cli.out.println(JsonText.encodePretty(result));
            if (result instanceof JsonObject r && r.containsKey("fd_index")) {
                cli.err.println("vfio-export: note: the fd was not received; the export ends with this command "
                        + "(use 'export' to hold one)");
            }
        }
        return Exit.OK;
    }

    private JsonObject params() throws IOException {
        String given = params.getValue();
        if (given == null) return null;
        String text = given.equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : given;
        try {
            return JsonText.parseObject(text.strip());
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "PARAMS-JSON must be a JSON object: " + e.getMessage());
        }
    }
}

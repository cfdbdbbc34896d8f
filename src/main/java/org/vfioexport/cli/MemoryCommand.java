package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.util.concurrent.Callable;

/** {@code memory DEVICE on|off}: device.set_memory. */
final class MemoryCommand implements Callable<Integer> {
    /** The two states, so that picocli checks the word and completion offers it. */
    enum State { on, off }

    private final Cli cli;
    private final PositionalParamSpec device = Cli.device(0);
    private final PositionalParamSpec state = PositionalParamSpec.builder().index("1").paramLabel("on|off")
            .type(State.class).required(true).description("the new state").build();

    MemoryCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        return Cli.command(this, "memory", "Turn a device's PCI memory decoding on or off (device.set_memory): off "
                + "revokes its exports, on restores them.").addPositional(device).addPositional(state);
    }

    @Override
    public Integer call() throws Exception {
        String d = PciAddress.normalise(device.getValue());
        try (VfioExportClient c = cli.connect()) {
            JsonObject r = c.request("device.set_memory", new JsonObject().put("device", d).put("enabled", state.getValue() == State.on));
            if (cli.json()) cli.printJson(r);
            else cli.out.println("memory " + (r.getBoolean("memory_enabled") ? "on" : "off") + " for " + d
                    + ": revoked " + r.getInteger("revoked") + ", restored " + r.getInteger("restored"));
        }
        return Exit.OK;
    }
}

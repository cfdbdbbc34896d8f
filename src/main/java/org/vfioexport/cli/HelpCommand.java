package org.vfioexport.cli;

import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.util.List;
import java.util.concurrent.Callable;

/** {@code help [COMMAND]}: the same text as {@code COMMAND --help}, on stdout. */
final class HelpCommand implements Callable<Integer> {
    private static final List<String> COMMANDS = List.of("devices", "device", "export", "release", "reset", "memory",
            "watch", "methods", "call", "help");

    private final Cli cli;
    private final PositionalParamSpec command = PositionalParamSpec.builder().index("0").arity("0..1")
            .paramLabel("COMMAND").type(String.class).completionCandidates(COMMANDS)
            .description("the command to describe (default: all of them, briefly)").build();
    private CommandSpec spec;

    HelpCommand(Cli cli) {
        this.cli = cli;
    }

    CommandSpec spec() {
        spec = Cli.command(this, "help", "Show the help of a command, as COMMAND --help does.").addPositional(command);
        spec.helpCommand(true);
        return spec;
    }

    @Override
    public Integer call() {
        CommandLine root = spec.root().commandLine();
        String name = command.getValue();
        CommandLine target = name == null ? root : root.getSubcommands().get(name);
        if (target == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "no command '" + name + "'; there are "
                    + String.join(", ", root.getSubcommands().keySet()));
        }
        target.usage(cli.out);
        cli.out.flush();
        return Exit.OK;
    }
}

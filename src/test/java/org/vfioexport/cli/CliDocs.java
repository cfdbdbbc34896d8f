package org.vfioexport.cli;

import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.codegen.docgen.manpage.ManPageGenerator;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Generates the CLI's man pages (AsciiDoc, one per command; the build turns them into troff) and its bash
 * completion script from the command model itself, with picocli's own generators. The build runs it after
 * compiling the tests ({@code process-test-classes}), so {@link CliDocsTest} checks what it wrote; nothing it
 * writes is committed.
 *
 * <p>Usage: {@code CliDocs MAN-ADOC-DIR COMPLETION-FILE}.
 */
public final class CliDocs {
    private CliDocs() {}

    public static void main(String[] args) throws Exception {
        Path man = Path.of(args[0]);
        Path completion = Path.of(args[1]);
        CommandLine cli = Cli.spec();
        List<CommandSpec> specs = new ArrayList<>();
        specs.add(cli.getCommandSpec());
        for (CommandLine sub : cli.getSubcommands().values()) specs.add(sub.getCommandSpec());
        Files.createDirectories(man);
        int rc = ManPageGenerator.generateManPage(man.toFile(), null, new boolean[0], false,
                specs.toArray(CommandSpec[]::new));
        if (rc != 0) throw new IllegalStateException("ManPageGenerator failed: " + rc);
        Files.createDirectories(completion.getParent());
        Files.writeString(completion, AutoComplete.bash(Cli.NAME, cli));
        System.out.println("CliDocs: " + specs.size() + " man pages in " + man + ", completion in " + completion);
    }

    static File[] pages(Path dir) {
        return dir.toFile().listFiles();
    }
}

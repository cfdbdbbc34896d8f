package org.vfioexport.app;

import org.vfioexport.cli.Cli;
import picocli.CommandLine;

import java.util.Arrays;

/** Entry point of the jar: {@code daemon ...} runs the service, anything else is the command-line client. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        int rc;
        if (args.length > 0 && args[0].equals("daemon")) {
            Logging.routeLibraries();
            rc = new CommandLine(new DaemonCommand()).setCaseInsensitiveEnumValuesAllowed(true)
                    .execute(Arrays.copyOfRange(args, 1, args.length));
        } else {
            rc = Cli.run(args);
        }
        System.exit(rc);
    }
}

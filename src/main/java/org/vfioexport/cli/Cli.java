package org.vfioexport.cli;

import org.vfioexport.client.ConnectFailedException;
import org.vfioexport.client.SocketPath;
import org.vfioexport.client.vertx.JsonText;
import org.vfioexport.client.vertx.VfioExportClient;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParseResult;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code vfio-export}: the command-line client. Every command takes {@code --help}, {@code --json},
 * {@code --socket}, {@code -t} and {@code -r}; errors are one line on stderr and an exit status from {@link Exit}.
 *
 * <p>Start-up is most of what a call costs, so this path is kept light: {@code bin/vfio-export} runs this class
 * directly (not {@code app.Main}); nothing here loads Vert.x's event loop, Netty, Jackson or, except for
 * {@code export}, the foreign-function linker; and the picocli model is built in code, not from annotations
 * (reading annotations makes the JVM generate a proxy class per annotation type, ~10 ms each, which no cache
 * keeps). The man pages and bash completion are generated from this same model at build time.
 */
public final class Cli implements Callable<Integer> {
    static final String NAME = "vfio-export";
    static final String VERSION = "vfio-export 0.1.0";
    static final String DEVICE_HELP = "PCI address: 0000:01:00.0, or lspci's 01:00.0";

    final PrintStream out;
    final PrintStream err;
    private CommandLine commandLine;

    private Cli(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        int status = run(args);
        System.out.flush();
        // success returns, so the JVM ends as main ends: System.exit would first set up the JDK's logging to log
        // the exit (a few ms on every call)
        if (status != Exit.OK) System.exit(status);
    }

    /** Runs one command line; returns its exit status. */
    public static int run(String... args) {
        return run(System.out, System.err, args);
    }

    /** Runs one command line printing to {@code out} and {@code err}; returns its exit status. */
    public static int run(PrintStream out, PrintStream err, String... args) {
        Cli cli = new Cli(out, err);
        CommandLine cl = cli.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        cl.setParameterExceptionHandler((e, a) -> {
            e.getCommandLine().getErr().println(NAME + ": " + e.getMessage() + " (see '"
                    + e.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return Exit.USAGE;
        });
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> Failure.report(e, cmd.getErr(), cli.json()));
        return cl.execute(args);
    }

    /** The whole command tree, for running it, and for the man pages and completion script the build generates. */
    public static CommandLine spec() {
        return new Cli(System.out, System.err).commandLine();
    }

    private CommandLine commandLine() {
        if (commandLine != null) return commandLine;
        CommandSpec root = command(this, NAME, "Talks to vfio-exportd: lists devices, exports BAR slices as dma-buf "
                + "fds, resets, watches events, or calls any method of the protocol.");
        root.usageMessage().commandListHeading("%nCommands:%n");
        addCommonOptions(root);
        for (CommandSpec c : List.of(new DevicesCommand(this).spec(), new DeviceCommand(this).spec(),
                new ExportCommand(this).spec(), new ReleaseCommand(this).spec(), new ResetCommand(this).spec(),
                new MemoryCommand(this).spec(), new WatchCommand(this).spec(), new MethodsCommand(this).spec(),
                new CallCommand(this).spec(), new HelpCommand(this).spec())) {
            root.addSubcommand(c.name(), addCommonOptions(c));
        }
        commandLine = new CommandLine(root);
        return commandLine;
    }

    /** {@code vfio-export} alone: there is nothing to do, say what there is. */
    @Override
    public Integer call() {
        commandLine.getErr().println(NAME + ": a command is missing (see '" + NAME + " --help')");
        return Exit.USAGE;
    }

    // ---- the model -----------------------------------------------------------------------------------------------

    /** A command with the texts every command shows; its own options and parameters are added to it. */
    static CommandSpec command(Object userObject, String name, String... description) {
        CommandSpec c = CommandSpec.wrapWithoutInspection(userObject).name(name).version(VERSION);
        c.usageMessage().description(description).sortOptions(false)
                .footerHeading("%nSee also: ")
                .footer("vfio-exportd, docs/protocol.md (the methods, their params and errors).")
                .exitCodeListHeading("%nExit status:%n")
                .exitCodeList(Exit.LIST);
        return c;
    }

    /** The options every command takes, after its own. */
    private static CommandSpec addCommonOptions(CommandSpec c) {
        c.addOption(OptionSpec.builder("--socket").paramLabel("PATH").type(String.class)
                .description("the daemon's socket (default: " + SocketPath.describeDefault() + ")").build());
        c.addOption(OptionSpec.builder("--json").type(boolean.class)
                .description("print results as JSON, one value per line (errors too, on stderr)").build());
        c.addOption(OptionSpec.builder("-t", "--timeout").paramLabel("SECONDS").type(double.class)
                .description("wait at most this long for each answer of the daemon (default: 30)").build());
        c.addOption(OptionSpec.builder("-r", "--retries").paramLabel("N").type(int.class)
                .description("retry connecting N times, 0.2 s apart, while the socket is missing or refuses "
                        + "(default: 0)").build());
        c.addOption(OptionSpec.builder("-h", "--help").usageHelp(true).description("show this help and exit").build());
        c.addOption(OptionSpec.builder("-V", "--version").versionHelp(true).description("print the version and exit").build());
        return c;
    }

    /** The DEVICE parameter of the commands that take one. */
    static PositionalParamSpec device(int index) {
        return PositionalParamSpec.builder().index(String.valueOf(index)).paramLabel("DEVICE").type(String.class)
                .required(true).description(DEVICE_HELP).build();
    }

    // ---- the options of every command: given to the command or before it, the one nearer the command wins -------

    private <T> T common(String option, T absent) {
        for (ParseResult r = commandLine.getParseResult(); r != null; r = r.subcommand()) {
            if (r.hasMatchedOption(option)) absent = r.matchedOptionValue(option, absent);
        }
        return absent;
    }

    boolean json() {
        return commandLine != null && commandLine.getParseResult() != null && common("--json", false);
    }

    /** {@code --socket}, else the rule every client and the daemon share ({@link SocketPath}); absolute. */
    Path socketPath() {
        String socket = common("--socket", null);
        try {
            return SocketPath.resolve(socket == null ? null : Path.of(socket), null, System.getenv(), SocketPath::currentUid);
        } catch (SocketPath.NoDefaultException e) {
            throw new IllegalArgumentException(e.getMessage(), e); // a usage error: the user must name the socket
        }
    }

    long timeoutMs() {
        double seconds = common("--timeout", 30.0);
        if (!(seconds > 0)) throw new IllegalArgumentException("--timeout must be positive, not " + seconds);
        return Math.max(1, (long) (seconds * 1000));
    }

    int retries() {
        int n = common("--retries", 0);
        if (n < 0) throw new IllegalArgumentException("--retries must be 0 or more, not " + n);
        return n;
    }

    // ---- talking to the daemon -----------------------------------------------------------------------------------

    /** A client without fd passing: what every command but {@code export} needs, at a fraction of the start-up. */
    VfioExportClient connect() throws IOException {
        return connect(false);
    }

    /** Connects (retrying a missing or refusing socket {@code -r} times, 0.2 s apart) and reads the greeting. */
    VfioExportClient connect(boolean fds) throws IOException {
        long timeout = timeoutMs();
        int retries = retries();
        for (int attempt = 0; ; attempt++) {
            try {
                return VfioExportClient.connect(socketPath(), fds, timeout);
            } catch (ConnectFailedException e) {
                if (attempt >= retries) throw e;
            }
            try {
                Thread.sleep(200); // rpc.py's interval between connection attempts
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while retrying to connect");
            }
        }
    }

    /** Prints {@code value} as one line of JSON. */
    void printJson(Object value) {
        out.println(JsonText.encode(value));
        out.flush();
    }

    static Object u64(long v) {
        return v >= 0 ? (Object) v : new BigInteger(Long.toUnsignedString(v));
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}

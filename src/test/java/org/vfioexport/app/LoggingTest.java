package org.vfioexport.app;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.LoggingEvent;
import ch.qos.logback.core.OutputStreamAppender;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import ch.qos.logback.core.pattern.PatternLayoutBase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.vfioexport.testutil.DaemonProcess;

import java.io.IOException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The daemon's log: one line per event with an ISO timestamp, Vert.x and Netty in it, its level set by --log-level. */
class LoggingTest {
    /** TIME LEVEL LOGGER - MESSAGE, the time in ISO 8601 with its offset. */
    static final Pattern LINE = Pattern.compile(
            "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}(Z|[+-]\\d\\d:\\d\\d) (TRACE|DEBUG|INFO |WARN |ERROR) \\S+ - .*");

    @TempDir
    Path dir;

    private static LoggerContext configured(String resource) throws Exception {
        URL url = LoggingTest.class.getResource(resource);
        assertNotNull(url, resource);
        LoggerContext context = new LoggerContext();
        JoranConfigurator c = new JoranConfigurator();
        c.setContext(context);
        c.doConfigure(url);
        return context;
    }

    @SuppressWarnings("unchecked")
    private static LayoutWrappingEncoder<ILoggingEvent> encoder(LoggerContext context) {
        OutputStreamAppender<ILoggingEvent> a = (OutputStreamAppender<ILoggingEvent>)
                context.getLogger(Logger.ROOT_LOGGER_NAME).getAppender("STDERR");
        return (LayoutWrappingEncoder<ILoggingEvent>) a.getEncoder();
    }

    @Test
    void anEventIsOneLineEvenWithLineBreaksAndAStackTrace() throws Exception {
        LoggerContext context = configured("/logback.xml");
        Throwable t = new IOException("accept failed", new IllegalStateException("inner\nsecond line"));
        LoggingEvent e = new LoggingEvent(getClass().getName(), context.getLogger("org.vfioexport.api.AcceptGuard"),
                ch.qos.logback.classic.Level.WARN, "client said {}", t, new Object[] {"a\r\nforged line"});
        String out = new String(encoder(context).encode(e), StandardCharsets.UTF_8);
        assertTrue(out.endsWith("\n") && out.indexOf('\n') == out.length() - 1, out);
        String line = out.substring(0, out.length() - 1);
        assertTrue(LINE.matcher(line).matches(), line);
        assertTrue(line.contains(" WARN  AcceptGuard - client said a forged line | java.io.IOException: accept failed"
                + " | at org.vfioexport.app.LoggingTest."), line);
        assertTrue(line.contains(" | Caused by: java.lang.IllegalStateException: inner | second line | "), line);
        e = new LoggingEvent(getClass().getName(), context.getLogger("x.Y"), ch.qos.logback.classic.Level.INFO,
                "no throwable", null, null);
        assertTrue(new String(encoder(context).encode(e), StandardCharsets.UTF_8).endsWith(" INFO  Y - no throwable\n"));
    }

    @Test
    void testsLogInTheProductionLayout() throws Exception {
        assertEquals(((PatternLayoutBase<?>) encoder(configured("/logback.xml")).getLayout()).getPattern(),
                ((PatternLayoutBase<?>) encoder(configured("/logback-test.xml")).getLayout()).getPattern());
    }

    @Test
    void logLevelDebugShowsVertxAndNettyInTheSameLines() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir, c -> { }, List.of(), "--log-level", "DEBUG")) {
            assertEquals(0, d.terminate(30_000));
            List<String> lines = d.stderr().lines().toList();
            for (String l : lines) assertTrue(LINE.matcher(l).matches(), "not one event per line: " + l);
            String err = d.stderr();
            assertTrue(err.contains(" DEBUG LoggerFactory - Using io.vertx.core.logging.SLF4JLogDelegateFactory"), err);
            assertTrue(err.contains(" DEBUG ") && err.contains(" - -Dio.netty."), "Netty's debug lines: " + err);
            assertTrue(err.contains(" INFO  DaemonCommand - listening on " + d.socket()), err);
            assertTrue(err.contains(" INFO  DaemonCommand - stopped"), err);
        }
    }

    @Test
    void anUnknownLogLevelIsAUsageError() throws Exception {
        DaemonProcess d = DaemonProcess.spawn(dir, dir.resolve("x.sock"), c -> { }, List.of(), "--log-level", "loud");
        assertEquals(2, d.awaitExit(60_000));
        assertTrue(d.stderr().contains("Invalid value for option '--log-level'"), d.stderr());
    }

    /**
     * The daemon reports through its logger, never straight to stderr: a line without timestamp and level cannot
     * be filtered or found. The command line (cli/) prints to its user, and {@code --check-config} answers the
     * person who ran it before logging starts; nothing else writes to System.err or prints a stack trace.
     */
    @Test
    void theDaemonWritesNothingToStderrButThroughItsLogger() throws IOException {
        Path main = Path.of("src/main/java/org/vfioexport");
        List<String> found;
        try (java.util.stream.Stream<Path> files = java.nio.file.Files.walk(main)) {
            found = files.filter(p -> p.toString().endsWith(".java") && !p.startsWith(main.resolve("cli")))
                    .flatMap(p -> {
                        try {
                            List<String> lines = java.nio.file.Files.readAllLines(p);
                            return java.util.stream.IntStream.range(0, lines.size())
                                    .filter(i -> lines.get(i).contains("System.err") || lines.get(i).contains("printStackTrace("))
                                    .mapToObj(i -> main.relativize(p) + ":" + (i + 1) + ": " + lines.get(i).strip());
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }).filter(l -> !l.startsWith("app/DaemonCommand.java:") || !l.contains("invalid configuration"))
                    .toList();
        }
        assertTrue(found.isEmpty(), "write through an SLF4J logger instead:\n" + String.join("\n", found));
    }
}

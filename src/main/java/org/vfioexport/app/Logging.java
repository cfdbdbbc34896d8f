package org.vfioexport.app;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.LoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.OutputStreamAppender;
import io.netty.util.internal.logging.InternalLoggerFactory;
import io.netty.util.internal.logging.Slf4JLoggerFactory;
import io.vertx.core.logging.SLF4JLogDelegateFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.ZoneId;
import java.util.Iterator;

/**
 * The daemon's logging, set up once at start-up: SLF4J written by Logback ({@code logback.xml}: one line per
 * event on stderr), Vert.x and Netty routed into it, the root level from {@code --log-level}.
 *
 * <p>At start-up the whole formatting path is also run once ({@link #warmUp}), because at the fd limit a log
 * call must not need a new fd: the first event formatted loads the time-zone database (tzdb.dat, opened on first
 * use) and the first throwable formatted loads the stack-trace classes. A file that cannot be opened inside a
 * static initialiser leaves its class unusable for the rest of the process (NoClassDefFoundError on every later
 * use): that is how a failed accept at the fd limit, logged through java.util.logging, used to kill the acceptor
 * thread. After {@link #start} every logger call formats with classes and data already in memory and writes to the
 * already open stderr.
 */
public final class Logging {
    private Logging() {}

    /** The levels {@code --log-level} takes (case-insensitive). */
    public enum Level {
        ERROR, WARN, INFO, DEBUG, TRACE;

        ch.qos.logback.classic.Level logback() {
            return ch.qos.logback.classic.Level.toLevel(name());
        }
    }

    /**
     * Vert.x and Netty log through SLF4J. Both would find it on the class path by themselves; naming it here keeps
     * a stray {@code vertx-default-jul-logging.properties} or another binding from sending them elsewhere. Call
     * before either library creates a logger (first thing in main).
     */
    static void routeLibraries() {
        System.setProperty("vertx.logger-delegate-factory-class-name", SLF4JLogDelegateFactory.class.getName());
        InternalLoggerFactory.setDefaultFactory(Slf4JLoggerFactory.INSTANCE);
    }

    /**
     * Sets the root level ({@code null}: the configuration's), logs what a thread leaves uncaught (instead of the
     * JVM's stack trace on stderr) and warms the formatting path up.
     */
    static void start(Level level) {
        ch.qos.logback.classic.Logger root = rootLogger();
        if (level != null) root.setLevel(level.logback());
        Logger uncaught = LoggerFactory.getLogger("uncaught");
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> uncaught.error("thread {} died", t.getName(), e));
        warmUp(root);
    }

    private static ch.qos.logback.classic.Logger rootLogger() {
        return ((LoggerContext) LoggerFactory.getILoggerFactory()).getLogger(Logger.ROOT_LOGGER_NAME);
    }

    /**
     * Formats one event that carries arguments and a throwable (with a cause and a suppressed one) through the
     * encoder of each of the root's appenders, and loads the zone rules of the default time zone. Nothing is
     * written; what later events need is then loaded.
     */
    static void warmUp(ch.qos.logback.classic.Logger root) {
        ZoneId.systemDefault().getRules();
        Throwable t = new IOException("warm-up", new IllegalStateException("cause"));
        t.addSuppressed(new IllegalArgumentException("suppressed"));
        LoggingEvent event = new LoggingEvent(Logging.class.getName(), root, ch.qos.logback.classic.Level.ERROR,
                "warm-up {} {}\nsecond line", t, new Object[] {"argument", 1});
        for (Iterator<Appender<ILoggingEvent>> it = root.iteratorForAppenders(); it.hasNext(); ) {
            if (it.next() instanceof OutputStreamAppender<ILoggingEvent> a && a.getEncoder() != null) {
                a.getEncoder().encode(event);
            }
        }
    }
}

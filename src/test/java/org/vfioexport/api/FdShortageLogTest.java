package org.vfioexport.api;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The listener's fd-shortage log: at most one line per interval, and every turned-away connection counted once. */
class FdShortageLogTest {
    private static final long S = TimeUnit.SECONDS.toNanos(1);

    private final ListAppender<ILoggingEvent> lines = new ListAppender<>();
    private FdShortageLog log;

    @BeforeEach
    void setUp() {
        LoggerContext context = new LoggerContext();
        Logger logger = context.getLogger("test");
        logger.setLevel(Level.INFO);
        lines.setContext(context);
        lines.start();
        logger.addAppender(lines);
        log = new FdShortageLog(logger, 0);
    }

    private List<String> messages() {
        return lines.list.stream().map(e -> e.getLevel() + " " + e.getFormattedMessage()).toList();
    }

    @Test
    void aShortageIsWarnedOnceAndItsEndReported() {
        log.shortage("EMFILE", 107, true, 1 * S);
        log.shortage("EMFILE", 5, true, 2 * S);  // within the interval: counted, not logged
        log.accepted(3 * S);
        log.accepted(4 * S);                     // nothing more to say
        assertEquals(List.of(
                "WARN out of file descriptors at accept (EMFILE): 107 connection(s) turned away with -32005 since the"
                        + " last report; accepting again in " + AcceptGuard.BACKOFF_MS + " ms",
                "INFO accepting connections again; 5 connection(s) turned away for want of fds since the last report"),
                messages());
    }

    @Test
    void aFlappingShortageCostsOneLinePerInterval() {
        long t = 1 * S;
        for (int i = 0; i < 100; i++) { // fail, accept, fail, accept ... every 100 ms for 10 s
            log.shortage("ENFILE", 1, false, t);
            log.accepted(t + S / 20);
            t += S / 10;
        }
        List<String> m = messages();
        assertEquals(2, m.size(), m.toString()); // the warning and the end of it, then silence for the interval
        assertTrue(m.get(0).startsWith("WARN out of file descriptors at accept (ENFILE): 1 connection(s)"), m.get(0));
        assertTrue(m.get(0).endsWith("(the reserve fd is lost until an fd is free)"), m.get(0));
        log.accepted(t + FdShortageLog.INTERVAL_NS); // the interval is over: the rest is reported
        assertEquals("INFO accepting connections again; 99 connection(s) turned away for want of fds since the last"
                + " report", messages().get(2));
        log.close();
        assertEquals(3, messages().size(), "nothing left to report");
    }

    @Test
    void whatIsNotReportedYetIsReportedWhenTheListenerCloses() {
        log.shortage("EMFILE", 3, true, 1 * S);
        log.accepted(2 * S);
        log.shortage("EMFILE", 758, true, 3 * S); // within the interval: not logged
        log.accepted(4 * S);                      // nor here
        log.close();
        assertEquals("INFO listener closing; 758 connection(s) turned away for want of fds since the last report",
                messages().get(messages().size() - 1));
    }
}

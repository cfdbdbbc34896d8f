package org.vfioexport.api;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * What the listener says about running out of fds, rate-limited to one line per {@link #INTERVAL_NS}: a warning
 * when accepts fail (with the count of connections turned away since the last line), and a line when connections
 * are accepted again (right away after a warning, else once the interval has passed) with the count since the last
 * line. A flood at the fd limit thus costs a line or two, not one per connection, and every connection turned
 * away is counted in some line, at the latest when the listener closes. Used only on the listener's event-loop
 * thread.
 */
final class FdShortageLog {
    static final long INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);

    private final Logger log;
    private long lastLineNs;
    private boolean warned;
    private long unreported;

    FdShortageLog(Logger log, long nowNs) {
        this.log = log;
        this.lastLineNs = nowNs - INTERVAL_NS;
    }

    FdShortageLog() {
        this(LoggerFactory.getLogger(AcceptGuard.class), System.nanoTime());
    }

    /**
     * An accept failed for want of an fd ({@code errnoName}) and {@code turnedAway} pending connections were
     * answered with the refusal; {@code reserveHeld} says whether the reserve fd could be reopened.
     */
    void shortage(String errnoName, int turnedAway, boolean reserveHeld, long nowNs) {
        unreported += turnedAway;
        if (nowNs - lastLineNs < INTERVAL_NS) return;
        log.warn("out of file descriptors at accept ({}): {} connection(s) turned away with -32005 since the last"
                        + " report; accepting again in {} ms{}", errnoName, unreported, AcceptGuard.BACKOFF_MS,
                reserveHeld ? "" : " (the reserve fd is lost until an fd is free)");
        warned = true;
        reported(nowNs);
    }

    /** A connection was accepted. */
    void accepted(long nowNs) {
        if (!warned && (unreported == 0 || nowNs - lastLineNs < INTERVAL_NS)) return;
        log.info("accepting connections again; {} connection(s) turned away for want of fds since the last report",
                unreported);
        warned = false;
        reported(nowNs);
    }

    /** The listener closes: reports the connections turned away and not yet reported. */
    void close() {
        if (unreported == 0) return;
        log.info("listener closing; {} connection(s) turned away for want of fds since the last report", unreported);
        unreported = 0;
    }

    private void reported(long nowNs) {
        lastLineNs = nowNs;
        unreported = 0;
    }
}

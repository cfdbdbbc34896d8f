package org.vfioexport.audit;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * At most one {@code connection.refused} record per uid per second: a user the policy refuses can connect as
 * often as it likes, and must not be able to flood the journal (and rotate older records away) by doing so.
 * The record that is written counts the ones suppressed before it.
 */
final class RefusalThrottle {
    private static final long INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);
    private static final int MAX_UIDS = 4096;

    private final Map<Long, long[]> byUid = new HashMap<>(); // uid -> {last written (nanoTime), suppressed since}

    /** -1 when this refusal is to be suppressed; otherwise how many were suppressed before it. */
    synchronized long admit(long uid, long now) {
        long[] s = byUid.get(uid);
        if (s != null && now - s[0] < INTERVAL_NS) {
            s[1]++;
            return -1;
        }
        if (s == null) {
            if (byUid.size() >= MAX_UIDS) byUid.values().removeIf(x -> now - x[0] >= INTERVAL_NS);
            if (byUid.size() >= MAX_UIDS) byUid.clear();
            s = new long[2];
            byUid.put(uid, s);
        }
        long suppressed = s[1];
        s[0] = now;
        s[1] = 0;
        return suppressed;
    }
}

package org.vfioexport.device;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * One revocation handshake of an exclusive operation (a reset, a memory-off): the watchers it still waits for,
 * export by export, and the tally of answers. Touched only by the device's steps. A watcher answers with
 * {@code export.quiesced}, by ending its watch, or by closing its connection; the rest are counted as timed out
 * when the operation goes on ({@link #finish()}).
 */
final class Handshake {
    private final long deadlineMs;
    private final long startNanos = System.nanoTime();
    private final Map<String, Set<Watcher>> waiting = new HashMap<>();
    private final Map<String, int[]> tally = new HashMap<>();   // export -> {acked, timed out}
    private int pending;
    private int acked;
    private int timedOut;
    private boolean finished;

    Handshake(long deadlineMs) {
        this.deadlineMs = deadlineMs;
    }

    long deadlineMs() {
        return deadlineMs;
    }

    void await(String exportId, Watcher w) {
        if (waiting.computeIfAbsent(exportId, k -> new LinkedHashSet<>()).add(w)) pending++;
        tally.computeIfAbsent(exportId, k -> new int[2]);
    }

    /** True if the handshake still waits for {@code w}'s answer about {@code exportId}. */
    boolean awaits(String exportId, Watcher w) {
        Set<Watcher> s = waiting.get(exportId);
        return !finished && s != null && s.contains(w);
    }

    /** {@code w} answered about {@code exportId}; false if it was not awaited (already answered, or too late). */
    boolean answer(String exportId, Watcher w) {
        if (!awaits(exportId, w)) return false;
        waiting.get(exportId).remove(w);
        tally.get(exportId)[0]++;
        acked++;
        pending--;
        return true;
    }

    /** Every answer is in (or the wait was cut short): the operation need not wait for the deadline. */
    boolean settled() {
        return pending == 0;
    }

    /** The operation goes on: whoever has not answered timed out. */
    void finish() {
        if (finished) return;
        finished = true;
        waiting.forEach((id, ws) -> {
            tally.get(id)[1] += ws.size();
            timedOut += ws.size();
        });
        waiting.clear();
        pending = 0;
    }

    /** The export's outcome for its {@code export.revoked}, or null if the handshake did not ask about it. */
    int[] outcome(String exportId) {
        return tally.get(exportId);
    }

    int acked() {
        return acked;
    }

    int timedOut() {
        return timedOut;
    }

    long micros() {
        return (System.nanoTime() - startNanos) / 1000;
    }
}

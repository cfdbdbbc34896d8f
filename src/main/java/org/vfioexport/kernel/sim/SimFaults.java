package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.KernelException;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Fault injection: every simulated kernel step that can fail passes through {@link #enter(String, String)} and
 * is counted. A plan makes the Nth step (counted over all steps, or over the steps of one name) fail with a chosen
 * errno, or take a chosen time, the way the kernel's fail-nth fault injection drives selftests through every
 * error path.
 */
public final class SimFaults {
    private record Plan(String step, long nth, int errno, long nanos) {}

    private final AtomicLong calls = new AtomicLong();
    private final Map<String, AtomicLong> perStep = new ConcurrentHashMap<>();
    private volatile Plan plan;
    private final Map<String, java.util.function.Consumer<Long>> hooks = new ConcurrentHashMap<>();

    /** The Nth step from now on (1-based, any step) fails with {@code errno}. */
    public void failNth(long nth, int errno) {
        plan = new Plan(null, calls.get() + nth, errno, 0);
    }

    /** The Nth occurrence from now on of {@code step} fails with {@code errno}. */
    public void failNth(String step, long nth, int errno) {
        plan = new Plan(step, count(step).get() + nth, errno, 0);
    }

    /** The Nth occurrence from now on of {@code step} takes {@code nanos} before it proceeds. */
    public void delayNth(String step, long nth, long nanos) {
        plan = new Plan(step, count(step).get() + nth, 0, nanos);
    }

    public void clear() {
        plan = null;
        hooks.clear();
    }

    /**
     * Runs {@code hook} (given the occurrence number, from 1) each time {@code step} is entered, on the thread
     * that enters it: tests use it to hold a kernel call at a known point with a latch instead of a sleep.
     */
    public void onStep(String step, java.util.function.Consumer<Long> hook) {
        if (hook == null) hooks.remove(step);
        else hooks.put(step, hook);
    }

    /**
     * Whether a step whose name starts with {@code prefix} may be held up: a test hook is installed on it, or a
     * delay is planned for it. The device asks before a call, so that a call a test holds does not hold an event
     * loop too.
     */
    public boolean mayHold(String prefix) {
        Plan p = plan;
        if (p != null && p.nanos > 0 && p.step != null && p.step.startsWith(prefix)) return true;
        for (String step : hooks.keySet()) if (step.startsWith(prefix)) return true;
        return false;
    }

    /** Steps entered so far. */
    public long calls() {
        return calls.get();
    }

    private AtomicLong count(String step) {
        return perStep.computeIfAbsent(step, s -> new AtomicLong());
    }

    /** Counts a step; throws the planned failure, or waits the planned time, when the plan names this one. */
    void enter(String step, String op) throws KernelException {
        long all = calls.incrementAndGet();
        long mine = count(step).incrementAndGet();
        java.util.function.Consumer<Long> hook = hooks.get(step);
        if (hook != null) hook.accept(mine);
        Plan p = plan;
        if (p == null) return;
        boolean hit = p.step == null ? all == p.nth : p.step.equals(step) && mine == p.nth;
        if (!hit) return;
        plan = null;
        if (p.nanos > 0) {
            long end = System.nanoTime() + p.nanos;
            for (long left; (left = end - System.nanoTime()) > 0; ) LockSupport.parkNanos(left);
            return;
        }
        throw new KernelException(op, p.errno, "injected at " + step);
    }
}

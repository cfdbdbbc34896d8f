package org.vfioexport.testutil;

import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** Bounded waits for conditions that settle asynchronously (closes, releases), with a message on failure. */
public final class Wait {
    private Wait() {}

    public static void until(String what, long timeoutMs, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out after " + timeoutMs + " ms waiting for " + what);
            Thread.onSpinWait();
            try {
                Thread.sleep(5); // polling interval of a bounded wait, not a synchronisation
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what);
            }
        }
    }

    /** Waits until {@code value} equals {@code expected}; the failure names the last value seen. */
    public static <T> void untilEquals(String what, long timeoutMs, T expected, Supplier<T> value) {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        T last;
        while (!expected.equals(last = value.get())) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeoutMs + " ms waiting for " + what + ": expected "
                        + expected + ", last seen " + last);
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what);
            }
        }
    }
}

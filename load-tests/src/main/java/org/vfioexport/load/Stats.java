package org.vfioexport.load;

import org.HdrHistogram.Histogram;

import java.util.concurrent.atomic.AtomicLongArray;

/** Latency histograms (nanoseconds) and a completions-per-interval timeline. */
final class Stats {
    static final long TICK_MS = 100;

    static Histogram histogram() {
        return new Histogram(3_600_000_000_000L, 3);
    }

    /** Completions per {@link #TICK_MS} since {@code startNanos}. */
    static final class Timeline {
        final long startNanos = System.nanoTime();
        final AtomicLongArray ticks = new AtomicLongArray(20 * 60 * 10);

        void add(long n) {
            int i = (int) ((System.nanoTime() - startNanos) / (TICK_MS * 1_000_000));
            if (i < ticks.length()) ticks.addAndGet(i, n);
        }

        /** Per-second rates of each tick up to {@code elapsedNanos}. */
        double[] ratesPerSecond(long elapsedNanos) {
            int n = (int) Math.min(ticks.length(), Math.max(1, elapsedNanos / (TICK_MS * 1_000_000)));
            double[] out = new double[n];
            for (int i = 0; i < n; i++) out[i] = ticks.get(i) * 1000.0 / TICK_MS;
            return out;
        }
    }

    static String us(double nanos) {
        return String.format("%.1f", nanos / 1000.0);
    }
}

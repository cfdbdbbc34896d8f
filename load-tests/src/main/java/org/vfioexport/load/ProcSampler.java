package org.vfioexport.load;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The daemon's resident memory and fd count, read from /proc: now, and the peak over a scenario. The RSS peak is
 * the kernel's own high-water mark (VmHWM, reset at {@link #start} through {@code clear_refs}), so a spike between
 * two samples is not missed; fds are sampled every 50 ms.
 */
final class ProcSampler implements AutoCloseable {
    private final long pid;
    private final Thread thread;
    private volatile boolean stop;
    private volatile long peakFds;
    private volatile long peakRssSampled;
    private boolean hwmReset;

    private ProcSampler(long pid) {
        this.pid = pid;
        this.thread = new Thread(this::run, "proc-sampler-" + pid);
        this.thread.setDaemon(true);
    }

    /** Resets the kernel's RSS high-water mark of {@code pid} and starts sampling. */
    static ProcSampler start(long pid) {
        ProcSampler s = new ProcSampler(pid);
        try {
            Files.writeString(Path.of("/proc/" + pid + "/clear_refs"), "5");   // 5: reset VmHWM to the current RSS
            s.hwmReset = true;
        } catch (IOException e) {
            s.hwmReset = false;   // not root, or an old kernel: the sampled peak is all there is
        }
        s.peakFds = fds(pid);
        s.peakRssSampled = rssKib(pid);
        s.thread.start();
        return s;
    }

    private void run() {
        while (!stop) {
            long f = fds(pid), r = rssKib(pid);
            if (f > peakFds) peakFds = f;
            if (r > peakRssSampled) peakRssSampled = r;
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    long peakFds() {
        return peakFds;
    }

    /** Peak RSS in KiB since {@link #start}. */
    long peakRssKib() {
        long hwm = hwmReset ? status(pid, "VmHWM:") : -1;
        return Math.max(hwm, peakRssSampled);
    }

    static long rssKib(long pid) {
        return status(pid, "VmRSS:");
    }

    static long fds(long pid) {
        try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
    }

    /**
     * Context switches (voluntary and not) of every live thread of {@code pid}: each thread hand-off that parks a
     * thread costs one. Threads that have exited are not counted.
     */
    static long contextSwitches(long pid) {
        long sum = 0;
        try (Stream<Path> tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : tasks.toList()) {
                try {
                    for (String l : Files.readAllLines(t.resolve("status"))) {
                        if (l.startsWith("voluntary_ctxt_switches:") || l.startsWith("nonvoluntary_ctxt_switches:")) {
                            sum += Long.parseLong(l.replaceAll("\\D", ""));
                        }
                    }
                } catch (IOException | NumberFormatException e) {
                    // the thread exited meanwhile
                }
            }
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
        return sum;
    }

    private static long status(long pid, String key) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (l.startsWith(key)) return Long.parseLong(l.replaceAll("\\D", ""));
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    @Override
    public void close() {
        stop = true;
        thread.interrupt();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

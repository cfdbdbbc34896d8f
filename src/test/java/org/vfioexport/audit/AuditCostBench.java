package org.vfioexport.audit;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.TestDaemon;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;

import static org.vfioexport.testutil.Conf.NVME;

/**
 * What the journal costs on export churn: export/release pairs, one at a time on one connection, against an
 * in-process daemon without the journal, with it (fsync_ms 200), and with fsync before every answer (fsync_ms 0).
 * A measurement, not a test: it runs only with {@code -Dvfioexport.bench=true}, and prints.
 */
class AuditCostBench {
    private static final int PAIRS = 2000;
    private static final int ROUNDS = 5;

    @TempDir
    Path dir;

    @Test
    void exportReleaseChurn() throws Exception {
        Assumptions.assumeTrue(Boolean.getBoolean("vfioexport.bench"), "a measurement: -Dvfioexport.bench=true");
        String[] names = {"audit off", "audit on, fsync_ms 200", "audit on, fsync_ms 0"};
        @SuppressWarnings("unchecked")
        Consumer<JsonObject>[] confs = new Consumer[] {
                (Consumer<JsonObject>) c -> c.put("audit", new JsonObject().put("enabled", false)),
                (Consumer<JsonObject>) c -> c.put("audit", new JsonObject().put("fsync_ms", 200)),
                (Consumer<JsonObject>) c -> c.put("audit", new JsonObject().put("fsync_ms", 0))};
        long[][] us = new long[confs.length][ROUNDS];
        long[][] writerNs = new long[confs.length][ROUNDS];
        for (int round = 0; round < ROUNDS; round++) {
            for (int i = 0; i < confs.length; i++) {
                Path d = Files.createDirectory(dir.resolve("r" + round + "c" + i));
                try (TestDaemon daemon = TestDaemon.start(d, confs[i]); VfioExportClient c = daemon.connect()) {
                    churn(c, 500); // warm-up
                    long cpu0 = writerCpuNanos();
                    long t0 = System.nanoTime();
                    churn(c, PAIRS);
                    us[i][round] = (System.nanoTime() - t0) / 1000 / PAIRS;
                    writerNs[i][round] = (writerCpuNanos() - cpu0) / PAIRS;
                }
            }
        }
        for (int i = 0; i < confs.length; i++) {
            long[] r = us[i].clone();
            Arrays.sort(r);
            long[] w = writerNs[i].clone();
            Arrays.sort(w);
            System.out.printf("audit cost: %-24s %d export/release pairs: median %d us per pair (rounds %s); "
                    + "journal thread CPU median %d ns per pair%n", names[i], PAIRS, r[ROUNDS / 2], Arrays.toString(us[i]), w[ROUNDS / 2]);
        }
    }

    /** CPU time of the journal's writer thread so far (0 without one). */
    private static long writerCpuNanos() {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().equals("vfio-export-audit")) sum += Math.max(0, mx.getThreadCpuTime(t.threadId()));
        }
        return sum;
    }

    private static void churn(VfioExportClient c, int pairs) throws Exception {
        for (int i = 0; i < pairs; i++) {
            ExportedBuffer b = c.export(NVME, 2, 0, 4096);
            c.request("export.release", new JsonObject().put("export_id", b.id()));
            b.fd().close();
        }
    }
}

package org.vfioexport.load.jmh;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.vfioexport.device.DeviceHandle;
import org.vfioexport.device.DeviceManager;
import org.vfioexport.device.Discipline;
import org.vfioexport.device.Export;
import org.vfioexport.device.ExportRequest;
import org.vfioexport.events.Cause;
import org.vfioexport.events.EventHub;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.sim.SimKernel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The device state machine over the simulated kernel: an export+release pair, and a reset with N live exports. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class DeviceBench {
    @Param({"MESSAGE_ORDER", "RW_LOCK"})
    Discipline discipline;

    @Param({"0", "100", "1000"})
    int liveExports;

    Vertx vertx;
    SimKernel kernel;
    DeviceManager devices;
    DeviceHandle dev;
    final List<Export> held = new ArrayList<>();
    static final ExportRequest REQ = new ExportRequest("bench", 0, List.of(new DmaRange(0, 4096)), 02000002);

    static <T> T get(Future<T> f) throws Exception {
        return f.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    }

    @Setup(Level.Trial)
    public void setup() throws Exception {
        vertx = Vertx.vertx();
        kernel = SimKernel.fromConfigFile(Path.of(System.getProperty("vfioexport.conf", "conf/vfio-export.json")));
        devices = get(DeviceManager.start(vertx, kernel, new EventHub(), Map.of(), discipline));
        dev = devices.get("0000:01:00.0");
        for (int i = 0; i < liveExports; i++) held.add(get(dev.export(REQ)));
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        get(devices.shutdown());
        vertx.close().await();
        kernel.close();
    }

    @Benchmark
    public Object exportReleasePair() throws Exception {
        Export e = get(dev.export(REQ));
        return get(dev.release(e, Cause.CLIENT));
    }

    @Benchmark
    public Object reset() throws Exception {
        return get(dev.reset());
    }
}

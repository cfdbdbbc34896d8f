package org.vfioexport.load.jmh;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.Json;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.infra.Blackhole;
import org.vfioexport.api.Params;

import java.util.concurrent.TimeUnit;

/** The request hot path before any device call: decode the NDJSON line, then the strict params check of export.create. */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class ParseBench {
    final Buffer single = Buffer.buffer("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"export.create\",\"params\":{\"device\":\"0000:01:00.0\",\"region\":0,\"offset\":0,\"length\":4096}}");
    final Buffer ranges = Buffer.buffer("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"export.create\",\"params\":{\"device\":\"0000:01:00.0\",\"region\":2,\"ranges\":[{\"offset\":0,\"length\":4096},{\"offset\":8192,\"length\":4096},{\"offset\":65536,\"length\":65536}]}}");
    final Buffer release = Buffer.buffer("{\"jsonrpc\":\"2.0\",\"id\":43,\"method\":\"export.release\",\"params\":{\"export_id\":\"0000:01:00.0/12345\"}}");

    @Benchmark
    public void exportCreateSingleRange(Blackhole bh) {
        JsonObject req = (JsonObject) Json.decodeValue(single);
        bh.consume(req.getValue("id"));
        bh.consume(req.getString("method"));
        Params p = Params.of(req.getValue("params")).only("device", "region", "ranges", "offset", "length", "open_flags");
        bh.consume(p.string("device"));
        bh.consume(p.u32("region"));
        bh.consume(p.u64("offset"));
        bh.consume(p.u64("length"));
    }

    @Benchmark
    public void exportCreateThreeRanges(Blackhole bh) {
        JsonObject req = (JsonObject) Json.decodeValue(ranges);
        Params p = Params.of(req.getValue("params")).only("device", "region", "ranges", "offset", "length", "open_flags");
        bh.consume(p.string("device"));
        bh.consume(p.u32("region"));
        JsonArray a = p.array("ranges");
        for (int i = 0; i < a.size(); i++) {
            Params e = p.element("ranges", a, i).only("offset", "length");
            bh.consume(e.u64("offset"));
            bh.consume(e.u64("length"));
        }
    }

    @Benchmark
    public void exportRelease(Blackhole bh) {
        JsonObject req = (JsonObject) Json.decodeValue(release);
        bh.consume(Params.of(req.getValue("params")).only("export_id").string("export_id"));
    }
}

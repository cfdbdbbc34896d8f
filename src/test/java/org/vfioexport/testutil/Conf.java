package org.vfioexport.testutil;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.vfioexport.kernel.sim.SimKernel;
import org.vfioexport.kernel.sim.SimSemantics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The project's configuration files, wherever the tests run from. */
public final class Conf {
    private Conf() {}

    public static Path home() {
        return Path.of(System.getProperty("vfioexport.home", "."));
    }

    public static Path file(String name) {
        return home().resolve("conf").resolve(name);
    }

    /**
     * The embedded default: conf/vfio-export.json (NVMe-like 0000:01:00.0, GPU-like 0000:02:00.0), with resets
     * as long as configured (an FLR's 100 ms).
     */
    public static SimKernel defaultSim(SimSemantics semantics) {
        try {
            return SimKernel.fromConfigFile(file("vfio-export.json"), semantics);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static SimKernel defaultSim() {
        return defaultSim(SimSemantics.V6_19);
    }

    /**
     * The embedded default with every reset method taking {@code resetMillis} (0 for tests that reset hundreds of
     * times, where the reset's duration is not what they test).
     */
    @SuppressWarnings("unchecked")
    public static SimKernel defaultSim(SimSemantics semantics, long resetMillis) {
        try {
            Map<String, Object> conf = new ObjectMapper().readValue(file("vfio-export.json").toFile(), Map.class);
            for (Object d : (List<Object>) conf.get("devices")) {
                Map<String, Object> device = (Map<String, Object>) d;
                if (Boolean.TRUE.equals(device.get("reset"))) device.put("reset_ms", resetMillis);
            }
            Map<String, Object> sim = new LinkedHashMap<>((Map<String, Object>) conf.getOrDefault("sim", Map.of()));
            sim.put("semantics", semantics.name());
            conf.put("sim", sim);
            return SimKernel.fromConfig(conf);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static final String NVME = "0000:01:00.0";
    public static final String GPU = "0000:02:00.0";
}

package org.vfioexport.testutil;

import org.vfioexport.kernel.sim.SimKernel;
import org.vfioexport.kernel.sim.SimSemantics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** The project's configuration files, wherever the tests run from. */
public final class Conf {
    private Conf() {}

    public static Path home() {
        return Path.of(System.getProperty("vfioexport.home", "."));
    }

    public static Path file(String name) {
        return home().resolve("conf").resolve(name);
    }

    /** The embedded default: conf/vfio-export.json (NVMe-like 0000:01:00.0, GPU-like 0000:02:00.0). */
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

    public static final String NVME = "0000:01:00.0";
    public static final String GPU = "0000:02:00.0";
}

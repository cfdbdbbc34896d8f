package org.vfioexport.app;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.client.SocketPath;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.DaemonProcess;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The daemon finds its socket by the clients' rule ({@link SocketPath}): --socket, else $VFIO_EXPORT_SOCKET, else the
 * configuration's {@code socket}, else the default; always absolute. Checked with --check-config (which binds
 * nothing, so no test touches the real /run) and one daemon listening in the test's directory.
 */
class SocketPathRuleTest {
    @TempDir
    Path dir;

    /** The daemon in {@code dir} on the shipped configuration with its socket key set (null: removed). */
    private ProcessBuilder daemon(String configuredSocket, Map<String, String> env, String... args) throws Exception {
        JsonObject conf = new JsonObject(Files.readString(Conf.file("vfio-export.json")));
        conf.remove("socket");
        if (configuredSocket != null) conf.put("socket", configuredSocket);
        Path file = dir.resolve("conf-" + System.nanoTime() + ".json");
        Files.writeString(file, conf.encodePrettily());
        List<String> a = new ArrayList<>(List.of("daemon", "--conf", file.toString()));
        a.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(DaemonProcess.javaCommand("org.vfioexport.app.Main", a.toArray(String[]::new)))
                .directory(dir.toFile());
        pb.environment().remove(SocketPath.ENV);
        pb.environment().remove("XDG_RUNTIME_DIR");
        pb.environment().putAll(env);
        return pb;
    }

    private String effectiveSocket(ProcessBuilder pb) throws Exception {
        DaemonProcess d = DaemonProcess.spawn(pb, dir.resolve("unused"));
        String line = d.awaitLineStartingWith("  \"socket\"", 60_000);
        assertEquals(0, d.awaitExit(60_000), d.stderr());
        return line.replaceAll("^  \"socket\" : \"(.*)\",$", "$1");
    }

    @Test
    void withoutAnySettingTheDefaultIsTheRulesForThisUid() throws Exception {
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        Path expected = SocketPath.currentUid() == 0 ? Path.of("/run/vfio-export/vfio-export.sock")
                : dir.resolve("vfio-export/vfio-export.sock");
        assertEquals(expected.toString(), effectiveSocket(daemon(null, env, "--check-config")));
    }

    @Test
    void theConfigurationsRelativeSocketComesOutAbsolute() throws Exception {
        assertEquals(dir.resolve("conf.sock").toString(), effectiveSocket(daemon("conf.sock", Map.of(), "--check-config")));
    }

    @Test
    void theVariableOverridesTheConfigurationAndTheFlagOverridesBoth() throws Exception {
        Map<String, String> env = Map.of(SocketPath.ENV, "env.sock");
        assertEquals(dir.resolve("env.sock").toString(), effectiveSocket(daemon("conf.sock", env, "--check-config")));
        assertEquals(dir.resolve("flag.sock").toString(),
                effectiveSocket(daemon("conf.sock", env, "--check-config", "--socket", "flag.sock")));
    }

    @Test
    void aUserWithoutARuntimeDirectoryIsToldToNameTheSocket() throws Exception {
        if (SocketPath.currentUid() == 0) {
            // root always has a default; the same refusal is what the rule's own test checks with uid 1000 given
            assertEquals("/run/vfio-export/vfio-export.sock", effectiveSocket(daemon(null, Map.of(), "--check-config")));
            return;
        }
        DaemonProcess d = DaemonProcess.spawn(daemon(null, Map.of(), "--check-config"), dir.resolve("unused"));
        assertEquals(1, d.awaitExit(60_000));
        assertTrue(d.stderr().contains("XDG_RUNTIME_DIR is not set") && d.stderr().contains("--socket"), d.stderr());
    }

    @Test
    void theDaemonPrintsTheSocketItListensOnAbsolute() throws Exception {
        Path socket = dir.resolve("run/rel.sock");
        DaemonProcess d = DaemonProcess.spawn(daemon("run/rel.sock", Map.of()), socket);
        try {
            d.awaitLine("vfio-exportd: listening on " + socket, 60_000);
            try (var c = d.connect()) {
                assertTrue(c.hello().containsKey("version") || !c.hello().isEmpty());
            }
        } finally {
            d.terminate(30_000);
        }
    }
}

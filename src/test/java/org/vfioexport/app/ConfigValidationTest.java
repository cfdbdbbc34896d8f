package org.vfioexport.app;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.DaemonProcess;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every configuration error names its JSON path, and a refused configuration leaves nothing on disk. */
class ConfigValidationTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', value = {
            "{\"polcy\":{}}                                                   | polcy: unknown key \"polcy\"",
            "{\"policy\":{\"max_bacth\":1}}                                   | policy.max_bacth: unknown key",
            "{\"policy\":{\"max_batch\":\"10\"}}                              | policy.max_batch: must be a whole number",
            "{\"policy\":{\"max_batch\":10.5}}                                | policy.max_batch: must be a whole number",
            "{\"policy\":{\"allow_uids\":[\"root\"]}}                         | policy.allow_uids[0]: must be a whole number",
            "{\"policy\":{\"allow_daemon_user\":\"yes\"}}                     | policy.allow_daemon_user: must be true or false",
            "{\"devices\":[{\"id\":\"x\",\"regions\":[{\"index\":0,\"kind\":\"mmio\",\"size\":\"big\"}]}]} | devices[0].regions[0].size: must be a whole number",
            "{\"devices\":[{\"id\":\"x\",\"regions\":[{\"index\":0,\"kind\":\"mmio\"}]}]} | devices[0].regions[0].size: is required",
            "{\"devices\":[{\"name\":\"x\"}]}                                 | devices[0].id: is required",
            "{\"backend\":3}                                                  | backend: must be a string",
            "{\"max_line_bytes\":{}}                                          | max_line_bytes: must be a whole number",
            "{\"a\":1,\"a\":2}                                                | not valid JSON: Duplicate field 'a'",
            "{\"audit\":{\"max_byte\":4096}}                                  | audit.max_byte: unknown key \"max_byte\"",
            "{\"audit\":{\"keep\":\"3\"}}                                     | audit.keep: must be a whole number",
            "{\"audit\":{\"enabled\":\"yes\"}}                                | audit.enabled: must be true or false",
            "{\"audit\":[]}                                                   | audit: must be an object",
    })
    void eachErrorNamesItsPath(String json, String expected) {
        ConfigSchema.InvalidConfigException e = assertThrows(ConfigSchema.InvalidConfigException.class,
                () -> ConfigSchema.bind(json));
        assertTrue(e.getMessage().startsWith(expected.strip()), e.getMessage());
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', value = {
            "{\"audit\":{\"keep\":0}}            | audit.keep must be 1 to 1000, got 0",
            "{\"audit\":{\"max_bytes\":100}}     | audit.max_bytes must be at least 4096, got 100",
            "{\"audit\":{\"fsync_ms\":-1}}       | audit.fsync_ms must be 0 to 60000, got -1",
            "{\"audit\":{\"path\":\"\"}}         | audit.path must name a file, got ''",
    })
    void auditValuesOutOfRangeAreRefused(String json, String expected) throws Exception {
        ConfigSchema.bind(json);
        StartupException e = assertThrows(StartupException.class, () -> new Config(new io.vertx.core.json.JsonObject(json)).validate());
        assertEquals(expected.strip(), e.getMessage());
    }

    @Test
    void theShippedConfigurationsAreValid() throws Exception {
        for (String name : List.of("vfio-export.json", "vmlab-devices.json")) {
            ConfigSchema.bind(Files.readString(Conf.file(name)));
        }
    }

    @Test
    void aRefusedConfigurationCreatesNothingOnDisk() throws Exception {
        Path socket = dir.resolve("run/sub/vfio-export.sock");
        DaemonProcess d = DaemonProcess.spawn(dir, socket, c -> c.getJsonObject("policy").put("polcy", 1));
        assertEquals(1, d.awaitExit(60_000));
        assertTrue(d.stderr().contains("policy.polcy: unknown key \"polcy\""), d.stderr());
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(), s.filter(p -> !p.getFileName().toString().startsWith("conf-")).toList(),
                    "nothing but the test's own configuration file");
        }
        DaemonProcess bad = DaemonProcess.spawn(dir, socket, c -> c.getJsonObject("policy").put("max_batch", 0));
        assertEquals(1, bad.awaitExit(60_000));
        assertTrue(bad.stderr().contains("policy.max_batch must be a positive integer, got 0"), bad.stderr());
        assertTrue(Files.notExists(dir.resolve("run")), "the socket's directory was not created");
    }

    @Test
    void checkConfigPrintsTheEffectiveConfigurationAndCreatesNothing() throws Exception {
        Path socket = dir.resolve("run/vfio-export.sock");
        DaemonProcess d = DaemonProcess.spawn(dir, socket, c -> c.getJsonObject("policy").put("max_batch", 77), List.of(),
                "--check-config");
        assertEquals("  \"backend\" : \"sim\",", d.awaitLineStartingWith("  \"backend\"", 60_000));
        assertEquals("  \"socket\" : \"" + socket.toAbsolutePath() + "\",", d.awaitLineStartingWith("  \"socket\"", 10_000));
        assertEquals("    \"max_connections_per_uid\" : ", d.awaitLineStartingWith("    \"max_connections_per_uid\"", 10_000)
                .replaceAll("[0-9]+,$", ""), "the per-uid defaults are computed and shown");
        assertEquals("    \"max_batch\" : 77,", d.awaitLineStartingWith("    \"max_batch\"", 10_000));
        assertEquals("    \"max_importers_per_uid\" : 64", d.awaitLineStartingWith("    \"max_importers_per_uid\"", 10_000));
        assertEquals(0, d.awaitExit(60_000), d.stderr());
        assertTrue(Files.notExists(dir.resolve("run")), "checking creates nothing");

        DaemonProcess bad = DaemonProcess.spawn(dir, socket, c -> c.put("polcy", 1), List.of(), "--check-config");
        assertEquals(1, bad.awaitExit(60_000));
        assertTrue(bad.stderr().contains("invalid configuration") && bad.stderr().contains("polcy: unknown key"), bad.stderr());
    }
}

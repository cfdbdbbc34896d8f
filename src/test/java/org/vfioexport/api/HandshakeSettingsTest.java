package org.vfioexport.api;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.vfioexport.app.Config;
import org.vfioexport.app.ConfigSchema;
import org.vfioexport.app.StartupException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code handshake} section: defaults, per-device deadlines, and every bound refused at load. */
class HandshakeSettingsTest {
    @Test
    @DisplayName("absent: 5 s by default, at most 60 s per call, 1024 watches per connection")
    void defaults() {
        HandshakeSettings h = HandshakeSettings.fromConfig(null);
        assertEquals(5000, h.deadlineFor("0000:01:00.0"));
        assertEquals(60_000, h.maxDeadlineMs());
        assertEquals(1024, h.maxWatchesPerClient());
    }

    @Test
    @DisplayName("a device's own deadline replaces the default for that device only")
    void perDevice() {
        HandshakeSettings h = HandshakeSettings.fromConfig(new JsonObject().put("deadline_ms", 300)
                .put("device_deadline_ms", new JsonObject().put("0000:01:00.0", 20)));
        assertEquals(20, h.deadlineFor("0000:01:00.0"));
        assertEquals(300, h.deadlineFor("0000:02:00.0"));
    }

    @Test
    @DisplayName("deadlines above the maximum, a maximum above the ceiling, no watches: refused, naming the key")
    void bounds() {
        for (JsonObject bad : new JsonObject[] {
                new JsonObject().put("max_deadline_ms", 1000).put("deadline_ms", 1001),
                new JsonObject().put("max_deadline_ms", 1000).put("device_deadline_ms", new JsonObject().put("x", 2000)),
                new JsonObject().put("max_deadline_ms", 600_001),
                new JsonObject().put("deadline_ms", -1),
                new JsonObject().put("max_watches_per_client", 0)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HandshakeSettings.fromConfig(bad),
                    bad.encode());
            assertTrue(e.getMessage().startsWith("handshake."), e.getMessage());
        }
    }

    @Test
    @DisplayName("the configuration file: typed (an unknown key is refused) and checked at load")
    void inTheFile() throws Exception {
        ConfigSchema.InvalidConfigException unknown = assertThrows(ConfigSchema.InvalidConfigException.class,
                () -> ConfigSchema.bind("{\"handshake\":{\"deadline\":5}}"));
        assertEquals("handshake.deadline", unknown.path());
        ConfigSchema.bind("{\"handshake\":{\"deadline_ms\":5,\"device_deadline_ms\":{\"0000:01:00.0\":7}}}");
        Config c = new Config(new JsonObject().put("handshake", new JsonObject().put("deadline_ms", 70_000)));
        assertThrows(StartupException.class, c::validate);
        assertEquals(5000, new Config(new JsonObject()).effective(0, 1024).getJsonObject("handshake").getLong("deadline_ms"));
    }
}

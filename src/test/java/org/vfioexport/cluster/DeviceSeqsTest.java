package org.vfioexport.cluster;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fleet stream's per-device seq check: gap-free, or an explicit events.lost naming the exact range. */
class DeviceSeqsTest {
    private static JsonObject event(String device, long seq) {
        return new JsonObject().put("seq", seq).put("device", device).put("type", "device.state").put("state", "ready");
    }

    private static JsonObject params(FleetEvent e) {
        return new JsonObject(new String(e.line(), StandardCharsets.UTF_8).trim()).getJsonObject("params");
    }

    @Test
    void aGapBecomesEventsLostBeforeTheNextEventAndDuplicatesAreDropped() {
        DeviceSeqs s = new DeviceSeqs();
        assertEquals(1, s.accept("id-b", "b", event("d", 7)).size(), "the first event seen starts the device");
        assertEquals(1, s.accept("id-b", "b", event("d", 8)).size());
        List<FleetEvent> jump = s.accept("id-b", "b", event("d", 12));
        assertEquals(2, jump.size());
        JsonObject lost = params(jump.get(0));
        assertEquals("events.lost", lost.getString("type"));
        assertEquals("b", lost.getString("node"));
        assertEquals("d", lost.getString("device"));
        assertEquals(9, lost.getLong("from_seq"));
        assertEquals(11, lost.getLong("to_seq"));
        JsonObject next = params(jump.get(1));
        assertEquals(12, next.getLong("seq"));
        assertEquals("b", next.getString("node"));
        assertEquals(3, s.lost());
        assertTrue(s.accept("id-b", "b", event("d", 12)).isEmpty(), "a duplicate");
        assertTrue(s.accept("id-b", "b", event("d", 10)).isEmpty(), "an older one");
        assertEquals(1, s.accept("id-b", "b", event("e", 1)).size(), "devices are independent");
    }

    @Test
    void aNewIncarnationOfANodeStartsItsDevicesAfresh() {
        DeviceSeqs s = new DeviceSeqs();
        s.accept("id-c1", "c", event("d", 40));
        s.forget("id-c1");
        List<FleetEvent> restarted = s.accept("id-c2", "c", event("d", 1));
        assertEquals(1, restarted.size(), "seq 1 of the restarted node is not a duplicate of seq 40");
        assertEquals(1, params(restarted.get(0)).getLong("seq"));
        assertEquals(0, s.lost());
    }
}

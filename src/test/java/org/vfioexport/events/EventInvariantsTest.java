package org.vfioexport.events;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The checker's linearization rules, on hand-written streams (the devices' own streams are checked elsewhere). */
class EventInvariantsTest {
    private static final String DEV = "0000:01:00.0";

    /** Builds one device's stream with consecutive seqs. */
    private static final class Stream {
        final List<Event> events = new ArrayList<>();

        Stream add(EventType type, String export, Cause cause, String state) {
            return add(type, export, cause, state, null);
        }

        Stream add(EventType type, String export, Cause cause, String state, Event.Handshake h) {
            events.add(new Event(events.size() + 1, DEV, type, export == null ? null : DEV + "/" + export, cause,
                    Instant.EPOCH, state, 0, 0, h));
            return this;
        }

        Stream revoking(String x) {
            return add(EventType.EXPORT_REVOKING, x, Cause.RESET, null, Event.Handshake.revoking(50));
        }

        Stream revokedAfterHandshake(String x, int acked, int timedOut) {
            return add(EventType.EXPORT_REVOKED, x, Cause.RESET, null, Event.Handshake.outcome(acked, timedOut));
        }

        Stream created(String x) {
            return add(EventType.EXPORT_CREATED, x, Cause.CLIENT, "live");
        }

        Stream revoked(String x, Cause c) {
            return add(EventType.EXPORT_REVOKED, x, c, null);
        }

        Stream restored(String x, Cause c) {
            return add(EventType.EXPORT_RESTORED, x, c, null);
        }

        Stream released(String x, Cause c) {
            return add(EventType.EXPORT_RELEASED, x, c, null);
        }

        Stream state(String s, Cause c) {
            return add(EventType.DEVICE_STATE, null, c, s);
        }

        List<String> violations() {
            EventInvariants inv = new EventInvariants();
            events.forEach(inv::accept);
            return inv.violations();
        }
    }

    @Test
    @DisplayName("the issue's stream: X live at resetting, released only after ready, is rejected at the first restore")
    void releasedAfterTheResetIsRejected() {
        List<String> v = new Stream().created("1").created("2").state("resetting", Cause.RESET)
                .revoked("2", Cause.RESET).restored("2", Cause.RESET).state("ready", Cause.RESET)
                .released("1", Cause.CLIENT).violations();
        assertEquals(1, v.size(), v.toString());
        assertTrue(v.getFirst().contains("seq 5 export.restored") && v.getFirst().contains(DEV + "/1"), v.toString());
    }

    @Test
    @DisplayName("the linearized stream: X released in the reset's revoke run, before the restores")
    void releasedInsideTheResetIsAccepted() {
        assertEquals(List.of(), new Stream().created("1").created("2").state("resetting", Cause.RESET)
                .revoked("2", Cause.RESET).released("1", Cause.CLIENT).restored("2", Cause.RESET)
                .state("ready", Cause.RESET).violations());
        // released in place of its restore (its release began after the revokes): also a valid history
        assertEquals(List.of(), new Stream().created("1").created("2").state("resetting", Cause.RESET)
                .revoked("1", Cause.RESET).revoked("2", Cause.RESET).released("1", Cause.CLIENT)
                .restored("2", Cause.RESET).state("ready", Cause.RESET).violations());
    }

    @Test
    @DisplayName("memory off: an export still live at the next event (a creation) is rejected")
    void memoryOffWindow() {
        List<String> v = new Stream().created("1").created("2").state("memory-disabled", Cause.MEMORY_DISABLE)
                .revoked("2", Cause.MEMORY_DISABLE).add(EventType.EXPORT_CREATED, "3", Cause.CLIENT, "revoked")
                .released("1", Cause.SESSION_END).violations();
        assertEquals(1, v.size(), v.toString());
        assertTrue(v.getFirst().contains("export.created") && v.getFirst().contains(DEV + "/1"), v.toString());
        assertEquals(List.of(), new Stream().created("1").state("memory-disabled", Cause.MEMORY_DISABLE)
                .released("1", Cause.SESSION_END).state("ready", Cause.MEMORY_ENABLE).violations());
    }

    @Test
    @DisplayName("a gap inside a window is not judged: the revokes may be in it")
    void gapInsideAWindow() {
        Stream s = new Stream().created("1").state("resetting", Cause.RESET);
        s.events.add(Event.lost(DEV, 3, 3));                       // seq 3, the revoke of 1, never delivered
        assertEquals(List.of(), s.restored("1", Cause.RESET).state("ready", Cause.RESET).violations());
    }

    @Test
    @DisplayName("device close: every export released before closed, nothing after it")
    void closedIsLast() {
        List<String> v = new Stream().created("1").revoked("1", Cause.DEVICE_CLOSE).state("closed", Cause.DEVICE_CLOSE)
                .released("1", Cause.CLIENT).violations();
        assertEquals(2, v.size(), v.toString());
        assertTrue(v.get(0).contains("not released before the device closed"), v.toString());
        assertTrue(v.get(1).contains("after device.state closed"), v.toString());
        assertEquals(List.of(), new Stream().created("1").revoked("1", Cause.DEVICE_CLOSE)
                .released("1", Cause.CLIENT).state("closed", Cause.DEVICE_CLOSE).violations());
    }

    @Test
    @DisplayName("a handshake: revoking for each watched live export, then resetting, then revoked with its outcome")
    void handshakeIsAccepted() {
        List<String> v = new Stream().created("1").created("2").revoking("1").revoking("2")
                .state("resetting", Cause.RESET).revokedAfterHandshake("1", 1, 0).revokedAfterHandshake("2", 0, 1)
                .restored("1", Cause.RESET).restored("2", Cause.RESET).state("ready", Cause.RESET).violations();
        assertTrue(v.isEmpty(), v.toString());
    }

    @Test
    @DisplayName("an announced export released in the window instead of revoked is accepted")
    void announcedThenReleased() {
        List<String> v = new Stream().created("1").revoking("1").state("resetting", Cause.RESET)
                .released("1", Cause.CLIENT).state("ready", Cause.RESET).violations();
        assertTrue(v.isEmpty(), v.toString());
    }

    @Test
    @DisplayName("an event between a handshake's revoking and the window it opens is rejected")
    void eventInsideTheHandshakeIsRejected() {
        List<String> v = new Stream().created("1").revoking("1").created("2").state("resetting", Cause.RESET)
                .revokedAfterHandshake("1", 1, 0).revoked("2", Cause.RESET).state("ready", Cause.RESET).violations();
        assertEquals(1, v.size(), v.toString());
        assertTrue(v.get(0).contains("inside a revocation handshake"), v.toString());
    }

    @Test
    @DisplayName("a revoke carrying acked/timed_out without a revoking, or an announced revoke without them, is rejected")
    void outcomeMustMatchTheAnnouncement() {
        List<String> unannounced = new Stream().created("1").state("resetting", Cause.RESET)
                .revokedAfterHandshake("1", 1, 0).state("ready", Cause.RESET).violations();
        assertEquals(1, unannounced.size(), unannounced.toString());
        List<String> bare = new Stream().created("1").revoking("1").state("resetting", Cause.RESET)
                .revoked("1", Cause.RESET).state("ready", Cause.RESET).violations();
        assertEquals(1, bare.size(), bare.toString());
    }

    @Test
    @DisplayName("revoking an export that is not live, or inside a reset, is rejected")
    void revokingOnlyWhileLive() {
        List<String> v = new Stream().created("1").state("resetting", Cause.RESET).revoked("1", Cause.RESET)
                .revoking("1").violations();
        assertEquals(2, v.size(), v.toString());
    }
}

package org.vfioexport.device;

/**
 * What the revocation handshake of one reset or memory-off came to: how many watches answered (by
 * {@code export.quiesced}, by ending the watch or by closing their connection), how many the deadline passed over,
 * and how long the operation waited. {@link #NONE} when no live export was watched.
 */
public record HandshakeOutcome(int acked, int timedOut, long micros) {
    public static final HandshakeOutcome NONE = new HandshakeOutcome(0, 0, 0);

    /** True when the operation consulted at least one watcher. */
    public boolean happened() {
        return acked + timedOut > 0;
    }
}

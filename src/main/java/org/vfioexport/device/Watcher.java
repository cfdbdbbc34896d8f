package org.vfioexport.device;

/**
 * A party that asked to be consulted before an export is revoked ({@code export.watch}): told when the revocation
 * handshake begins, it answers with {@link DeviceHandle#quiesced}. Compared by identity: one connection is one
 * watcher.
 */
public interface Watcher {
    /**
     * The handshake for {@code exportId} began: stop using it and answer within {@code deadlineMs}. Called inside
     * a step of the device (its loop, or a worker under the core's monitor): it must only hand the notice over to
     * the watcher's own thread, never wait.
     */
    void revoking(String device, String exportId, long seq, long deadlineMs);
}

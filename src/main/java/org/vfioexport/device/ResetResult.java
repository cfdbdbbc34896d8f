package org.vfioexport.device;

/**
 * What a reset did: how many exports it revoked and restored, how long the exclusive section took (the handshake
 * included), and what its revocation handshake came to.
 */
public record ResetResult(String device, int revoked, int restored, long durationMicros, HandshakeOutcome handshake) {}

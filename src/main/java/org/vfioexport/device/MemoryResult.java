package org.vfioexport.device;

/** What a memory toggle did, with the revocation handshake of a memory-off ({@link HandshakeOutcome#NONE} else). */
public record MemoryResult(String device, boolean memoryEnabled, int revoked, int restored, HandshakeOutcome handshake) {}

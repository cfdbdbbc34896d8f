package org.vfioexport.device;

/** What a memory toggle did. */
public record MemoryResult(String device, boolean memoryEnabled, int revoked, int restored) {}

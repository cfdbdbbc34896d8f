package org.vfioexport.device;

/** What a reset did: how many exports it revoked and restored, and how long the exclusive section took. */
public record ResetResult(String device, int revoked, int restored, long durationMicros) {}

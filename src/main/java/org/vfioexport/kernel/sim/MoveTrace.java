package org.vfioexport.kernel.sim;

import java.util.List;

/**
 * What one pass over a device's dma-buf list did, for tests: which buffers were notified (state changed), which
 * were passed over because their release had begun ({@code get_file_active} failed), and how many were listed.
 * Buffers are named by their inode number.
 */
public record MoveTrace(String trigger, boolean revoke, int listed, List<Integer> notified, List<Integer> skipped) {}

package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.RegionKind;

/** One configured BAR of a simulated device. */
public record SimRegionSpec(int index, RegionKind kind, long size, boolean prefetchable) {}

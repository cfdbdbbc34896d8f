package org.vfioexport.device;

import org.vfioexport.kernel.Region;

import java.util.List;

/**
 * The protocol's DEVICE object, as read on the device's loop.
 *
 * @param dmabufUnsupported null when the device can export dma-bufs; otherwise why not, from the PROBE at open
 *                          (a kernel without the feature answers ENOTTY, a variant driver EOPNOTSUPP)
 */
public record DeviceSnapshot(String device, String name, String backend, DeviceState state, boolean memoryEnabled,
                             long seq, int exports, boolean resetSupported, List<Region> regions,
                             String dmabufUnsupported) {}

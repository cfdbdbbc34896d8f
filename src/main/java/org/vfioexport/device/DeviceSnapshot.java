package org.vfioexport.device;

import org.vfioexport.kernel.Region;

import java.util.List;

/** The protocol's DEVICE object, as read on the device's loop. */
public record DeviceSnapshot(String device, String name, String backend, DeviceState state, boolean memoryEnabled,
                             long seq, int exports, boolean resetSupported, List<Region> regions) {}

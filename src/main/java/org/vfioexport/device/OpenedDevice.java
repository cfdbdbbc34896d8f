package org.vfioexport.device;

import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.VfioDevice;

import java.util.List;

/**
 * What opening a device told the manager, read once on a worker before the device's discipline takes over:
 * the fixed facts of the device, and its memory-enable bit at open.
 *
 * @param dmabufUnsupported null when the PROBE succeeded; otherwise why the device cannot export
 */
record OpenedDevice(VfioDevice device, String backend, String name, boolean resetSupported, List<Region> regions,
                    boolean memoryEnabled, String dmabufUnsupported) {
    OpenedDevice {
        regions = List.copyOf(regions);
    }

    String id() {
        return device.id();
    }

    DeviceSnapshot snapshot(DeviceState state, boolean memoryOn, long seq, int exports) {
        return new DeviceSnapshot(id(), name, backend, state, memoryOn, seq, exports, resetSupported, regions,
                dmabufUnsupported);
    }
}

package org.vfioexport.device;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import org.vfioexport.events.EventHub;
import org.vfioexport.kernel.VfioKernel;

import java.util.List;

/** Deploys one {@code DeviceVerticle} per device of a kernel and hands out their handles. */
public final class DeviceManager {
    private DeviceManager() {}

    /** Opens every device of {@code kernel} and deploys its verticle. */
    public static Future<DeviceManager> start(Vertx vertx, VfioKernel kernel, EventHub hub) {
        throw new UnsupportedOperationException("being written");
    }

    /** Device ids in configuration order. */
    public List<String> ids() {
        throw new UnsupportedOperationException("being written");
    }

    /** The handle of {@code id}, or null. */
    public DeviceHandle get(String id) {
        throw new UnsupportedOperationException("being written");
    }

    /** Exports alive across all devices. */
    public int liveExports() {
        throw new UnsupportedOperationException("being written");
    }

    /** Releases every export (cause shutdown), closes every device, undeploys. */
    public Future<Void> shutdown() {
        throw new UnsupportedOperationException("being written");
    }
}

package org.vfioexport.device;

import io.vertx.core.Future;
import org.vfioexport.events.Cause;

/**
 * The way into one device. Calls on one device take effect in the order they were made (under message order each
 * is a message to the device's loop, or runs at once on that loop's own thread); the returned futures fail with
 * {@link DeviceException} or {@code KernelException}, and complete on the caller's context. Safe to call from any
 * thread.
 */
public interface DeviceHandle {
    String id();

    Future<DeviceSnapshot> describe();

    /** Exports a slice; the future's export holds the service's reference to the dma-buf until released. */
    Future<Export> export(ExportRequest request);

    /**
     * Releases an export. The release begins at once, on the calling thread (so a reset already iterating skips
     * it, and its {@code export.released} is stamped there), and completes once the service's
     * reference is closed, after {@code export.released}.
     */
    Future<Export> release(Export export, Cause cause);

    /** {@code VFIO_DEVICE_RESET}: exclusive; revokes, resets, restores, with events. */
    Future<ResetResult> reset();

    /** Turns PCI memory decoding on or off: exclusive; revokes or restores, with events. */
    Future<MemoryResult> setMemory(boolean enabled);

    /** Closes the device: remaining exports are revoked for good and released (cause {@code cause}). */
    Future<Void> close(Cause cause);
}

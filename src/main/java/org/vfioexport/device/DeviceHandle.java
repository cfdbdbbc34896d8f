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

    /**
     * {@code VFIO_DEVICE_RESET}: exclusive; consults the watchers of live exports (waiting at most
     * {@code quiesceMillis} for their answers, without a thread), then revokes, resets, restores, with events.
     */
    Future<ResetResult> reset(long quiesceMillis);

    /** A reset whose handshake does not wait: watchers are told, and time out at once. */
    default Future<ResetResult> reset() {
        return reset(0);
    }

    /**
     * Turns PCI memory decoding on or off: exclusive; revokes (after the revocation handshake, at most
     * {@code quiesceMillis}) or restores, with events.
     */
    Future<MemoryResult> setMemory(boolean enabled, long quiesceMillis);

    default Future<MemoryResult> setMemory(boolean enabled) {
        return setMemory(enabled, 0);
    }

    /**
     * {@code w} asks to be consulted before {@code export} is revoked by a reset or memory-off. Answers between two
     * steps, never waiting for an operation; true if the watch is new. Fails NO_SUCH_EXPORT once its release began.
     */
    Future<Boolean> watch(Export export, Watcher w);

    /** The watch ends; an answer a running handshake awaited from {@code w} counts as given. True if it existed. */
    Future<Boolean> unwatch(Export export, Watcher w);

    /** {@code w} has quiesced {@code exportId}: fails NOT_WATCHING or NO_HANDSHAKE when nothing waits for it. */
    Future<Void> quiesced(String exportId, Watcher w);

    /** {@code w}'s connection closed: its watches end, its awaited answers count as given. Any thread. */
    void watcherGone(Watcher w);

    /** Closes the device: remaining exports are revoked for good and released (cause {@code cause}). */
    Future<Void> close(Cause cause);
}

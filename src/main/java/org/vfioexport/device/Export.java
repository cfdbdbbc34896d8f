package org.vfioexport.device;

import io.vertx.core.Promise;
import org.vfioexport.events.Cause;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * One export: a dma-buf of a BAR slice, owned by one session.
 *
 * <p>Its mutable state belongs to the device's core ({@link DeviceCore}), with one exception that mirrors the kernel: the
 * reference count. The owner holds one reference; a reset or memory toggle iterating the device's exports takes
 * a temporary one with {@link #tryGet()} (the kernel's {@code get_file_active}: increment unless zero). Release
 * begins by dropping the owner's reference from any thread ({@link #beginRelease}); from then on {@code tryGet}
 * fails, so a reset that is already iterating skips the export instead of revoking something being released.
 * Whoever drops the last reference hands the final release to the device's scheduler, where it runs after the current
 * operation, like the kernel's deferred {@code fput}.
 *
 * <p>For the device (and its event stream) the release takes effect earlier than that final release when an
 * operation meets the export first: see {@link ExportPass}. The export then leaves the device's table and gets
 * its {@code export.released}; the final release only closes the buffer and completes the caller's promise.
 */
public final class Export {
    private final String id;
    private final String device;
    private final String owner;
    private final int region;
    private final List<DmaRange> ranges;
    private final long size;
    private final long createdSeq;
    private final DmaBuf buf;
    private final AtomicInteger refs = new AtomicInteger(1);
    /** Hands the final release to the device (queued on its loop, or its worker pool); any thread. */
    private final Consumer<Export> finishRelease;
    private volatile ExportState state;
    private final CompletableFuture<Void> released = new CompletableFuture<>();

    Export(String id, String device, String owner, int region, List<DmaRange> ranges, long createdSeq, DmaBuf buf,
           ExportState state, Consumer<Export> finishRelease) {
        this.finishRelease = finishRelease;
        this.id = id;
        this.device = device;
        this.owner = owner;
        this.region = region;
        this.ranges = List.copyOf(ranges);
        this.size = buf.size();
        this.createdSeq = createdSeq;
        this.buf = buf;
        this.state = state;
    }

    public String id() {
        return id;
    }

    public String device() {
        return device;
    }

    public String owner() {
        return owner;
    }

    public int region() {
        return region;
    }

    public List<DmaRange> ranges() {
        return ranges;
    }

    public long size() {
        return size;
    }

    public long createdSeq() {
        return createdSeq;
    }

    public ExportState state() {
        return state;
    }

    void state(ExportState s) {
        state = s;
    }

    /** The final release: drops the service's reference to the dma-buf; {@link #whenReleased()} completes. */
    void closeBuffer() {
        try {
            buf.close();
        } finally {
            released.complete(null);
        }
    }

    /** Completes once the export is finally released (its buffer closed by the device), whatever the cause. */
    public CompletionStage<Void> whenReleased() {
        return released;
    }

    DmaBuf buf() {
        return buf;
    }

    /** Increment-if-not-zero: false once release has begun. */
    boolean tryGet() {
        int r;
        do {
            r = refs.get();
            if (r == 0) return false;
        } while (!refs.compareAndSet(r, r + 1));
        return true;
    }

    /** Drops a temporary reference; the last one hands the release to the device, like the kernel's fput. */
    void put() {
        if (refs.decrementAndGet() == 0) finishRelease.accept(this);
    }

    /**
     * Attaches a peer-to-peer importer (simulated, or iommufd on Linux) to this export's buffer, under a temporary reference so the
     * buffer cannot be released meanwhile. Fails with NO_SUCH_EXPORT once release has begun, and with the kernel's
     * errno otherwise (ENODEV while revoked, EOPNOTSUPP on a Linux kernel without iommufd).
     */
    public Importer attachImporter(Consumer<Importer> onInvalidate, Consumer<Importer> onRemap)
            throws KernelException, DeviceException {
        if (!tryGet()) {
            throw new DeviceException(DeviceException.Kind.NO_SUCH_EXPORT, device, id, "export " + id + " is being released");
        }
        try {
            return buf.attachImporter(onInvalidate, onRemap);
        } finally {
            put();
        }
    }

    /**
     * A close-on-exec duplicate of the dma-buf fd, for sending to a client, or null once release has begun. Safe from
     * any thread: a temporary reference keeps the device from closing the fd between the check and the dup.
     * Fails (EMFILE, ENFILE) when the daemon has no fd to spare; the export is then still alive.
     */
    public Fd dupFd() throws KernelException {
        if (!tryGet()) return null;
        try {
            return buf.dup();
        } finally {
            put();
        }
    }

    /**
     * Drops the owner's reference, once: safe from any thread. Returns false if release had already begun (a
     * second release of the same export). Returns true otherwise; {@code lastRef[0]} then tells whether nobody
     * else held a reference (the caller finishes the release) or another holder did (its {@link #put()} will).
     * The cause and the promise are published, in one step, before the reference drops: whoever sees the release
     * begun (a failed {@link #tryGet()}, or {@link #releaseBegun()}) sees them too.
     */
    boolean beginRelease(Cause cause, Promise<Export> done, boolean[] lastRef) {
        if (!release.compareAndSet(null, new Release(cause, done))) return false;
        lastRef[0] = refs.decrementAndGet() == 0;
        return true;
    }

    /** Who released the export and who waits for the release to complete. */
    private record Release(Cause cause, Promise<Export> done) {}

    private final AtomicReference<Release> release = new AtomicReference<>();

    /** True once the owner's reference is being dropped or gone: the release has begun. */
    boolean releaseBegun() {
        return release.get() != null;
    }

    /** The release's cause; only after it began (always so once {@link #whenReleased()} completed). */
    public Cause releaseCause() {
        return release.get().cause();
    }

    /** The caller waiting for the release, or null (a device close releasing on its own); only after it began. */
    Promise<Export> releaseDone() {
        return release.get().done();
    }

    /** True once the release has begun (the owner's reference is being dropped or gone). */
    public boolean isDying() {
        return releaseBegun();
    }
}

package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.DmaRange;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * The kernel side of one exported dma-buf: {@code struct vfio_pci_dma_buf} and the refcount of its
 * {@code struct file}. The monitor of this object plays the dma-buf's reservation (resv) lock.
 *
 * <p>Life: created on the device's list with {@code revoked = !memory_enabled}; revoked and restored by the
 * device under memory_lock; detached for good at device close; released (deferred) when the last file reference
 * goes, unlinking itself under memory_lock unless cleanup already did.
 */
public final class SimDmaBuf {
    public enum Phase { ACTIVE, RELEASING, RELEASED }

    private static final AtomicInteger INODES = new AtomicInteger();

    private final int inode = INODES.incrementAndGet();
    private final List<DmaRange> ranges;
    private final long size;
    private final int region;
    private final AtomicInteger fileRefs = new AtomicInteger(1);
    private final List<SimAttachment> attachments = new ArrayList<>();
    private final DeferredWork deferred;
    private final SimSemantics semantics;
    private volatile SimDevice device;      // back-pointer; cleared by cleanup or release
    private volatile Phase phase = Phase.ACTIVE;
    private boolean revoked;                // guarded by this
    private boolean detached;               // guarded by this
    private int mappings;                   // guarded by this (7.1's kref, without the +1)

    SimDmaBuf(SimDevice device, int region, List<DmaRange> ranges, long size, DeferredWork deferred,
              SimSemantics semantics) {
        this.device = device;
        this.region = region;
        this.ranges = List.copyOf(ranges);
        this.size = size;
        this.deferred = deferred;
        this.semantics = semantics;
    }

    public int inode() {
        return inode;
    }

    public long size() {
        return size;
    }

    public int region() {
        return region;
    }

    public List<DmaRange> ranges() {
        return ranges;
    }

    public Phase phase() {
        return phase;
    }

    public synchronized boolean revoked() {
        return revoked;
    }

    /** Detached by device close: revoked for good. */
    public synchronized boolean detached() {
        return detached;
    }

    public int fileRefs() {
        return fileRefs.get();
    }

    SimDevice device() {
        return device;
    }

    /** {@code get_file_active}: increment unless zero. */
    boolean tryGetFile() {
        int r;
        do {
            r = fileRefs.get();
            if (r == 0) return false;
        } while (!fileRefs.compareAndSet(r, r + 1));
        return true;
    }

    /** {@code fput}: the last reference defers the release to the kworker, never runs it here. */
    void fput() {
        int r = fileRefs.decrementAndGet();
        if (r < 0) throw new IllegalStateException("dma-buf file refcount underflow");
        if (r == 0) {
            phase = Phase.RELEASING;
            deferred.submit(this::release);
        }
    }

    /** The exporter's release op: unlink under memory_lock unless cleanup got there first, then free. */
    private void release() {
        SimDevice d = device;
        if (d != null) d.unlinkOnRelease(this);
        phase = Phase.RELEASED;
    }

    void setInitialRevoked(boolean r) {
        synchronized (this) {
            revoked = r;
        }
    }

    /**
     * Changes the revoked state (caller holds memory_lock and a file reference). Returns whether it changed,
     * which is exactly when importers were notified.
     */
    boolean move(boolean revoke) {
        synchronized (this) {
            if (detached || revoked == revoke) return false;
            revoked = revoke;
            for (SimAttachment a : List.copyOf(attachments)) a.invalidate();
        }
        if (revoke && semantics == SimSemantics.V7_1) awaitUnmapped();
        return true;
    }

    /** Device close: unlinked by the caller, revoked for good, importers told. */
    void detachForGood(boolean notify) {
        device = null;
        synchronized (this) {
            boolean changed = !revoked;
            revoked = true;
            detached = true;
            if (notify || changed) for (SimAttachment a : List.copyOf(attachments)) a.invalidate();
        }
    }

    void clearBackPointer() {
        device = null;
    }

    /** 7.1: a revoke blocks until every importer has unmapped (the merged code has no timeout). */
    private void awaitUnmapped() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        synchronized (this) {
            while (mappings > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) throw new IllegalStateException("importers did not unmap within 60 s of a revoke");
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    void mappingAdded() {
        mappings++;
    }

    void mappingRemoved() {
        mappings--;
        if (mappings == 0) notifyAll();
    }

    void detachAttachment(SimAttachment a) {
        attachments.remove(a);
    }

    /**
     * {@code dma_buf_dynamic_attach} by a peer-to-peer capable importer with an invalidate callback.
     * EOPNOTSUPP if the importer cannot do peer-to-peer; ENODEV while revoked. Takes a file reference.
     */
    public SimAttachment attach(boolean peer2peer, Consumer<SimAttachment> onInvalidate) throws KernelException {
        if (!peer2peer) throw new KernelException("dma_buf_dynamic_attach", Errno.EOPNOTSUPP, "importer is not peer2peer");
        if (!tryGetFile()) throw new KernelException("dma_buf_get", Errno.EBADF, "file is being released");
        synchronized (this) {
            if (!revoked) {
                SimAttachment a = new SimAttachment(this, onInvalidate);
                attachments.add(a);
                return a;
            }
        }
        fput();
        throw new KernelException("dma_buf_dynamic_attach", Errno.ENODEV, "revoked");
    }

    /** iommufd's private import ({@code IOMMU_IOAS_MAP_FILE}): one range only, not revoked. */
    public void iommufdMapCheck() throws KernelException {
        if (ranges.size() != 1) throw new KernelException("IOMMU_IOAS_MAP_FILE", Errno.EOPNOTSUPP, "nr_ranges != 1");
        if (revoked()) throw new KernelException("IOMMU_IOAS_MAP_FILE", Errno.ENODEV, "revoked");
    }
}

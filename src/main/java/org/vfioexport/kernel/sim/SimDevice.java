package org.vfioexport.kernel.sim;

import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.ffm.uapi.PciRegs;
import org.vfioexport.kernel.DeviceInfo;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;
import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.RegionKind;
import org.vfioexport.kernel.VfioDevice;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;

import static org.vfioexport.kernel.DmaBufRequest.FEATURE_MASK;
import static org.vfioexport.kernel.DmaBufRequest.GET;
import static org.vfioexport.kernel.DmaBufRequest.PROBE;
import static org.vfioexport.kernel.DmaBufRequest.SET;

/**
 * One open simulated vfio-pci device: {@code vfio_pci_core_device} with its {@code memory_lock} and
 * {@code dmabufs} list, reproducing docs/kernel-semantics.md errno for errno (section numbers below are its own).
 *
 * <p>This is a model of the kernel, so it keeps the kernel's lock: a read-write lock whose write side guards the
 * list, the memory-enable bit and every revoke/restore. The service above it does not lock; it orders.
 */
public final class SimDevice implements VfioDevice {
    static final long PAGE = 4096;
    private static final int PCI_CONFIG_SIZE = PciRegs.PCI_CFG_SPACE_EXP_SIZE;
    /** The largest kmalloc the kernel makes for the range array (4 MiB): more ranges is ENOMEM. */
    private static final long KMALLOC_MAX = 4L << 20;

    private final SimKernel kernel;
    private final SimDeviceSpec spec;
    private final ReentrantReadWriteLock memoryLock = new ReentrantReadWriteLock();
    private final List<SimDmaBuf> dmabufs = new ArrayList<>();   // guarded by memoryLock
    private final ArrayDeque<MoveTrace> traces = new ArrayDeque<>();
    private volatile boolean commandMemory;
    private volatile boolean open = true;
    private int registrations;                                    // guarded by memoryLock
    private static final Consumer<SimDmaBuf> NO_HOOK = b -> {};
    private volatile Consumer<SimDmaBuf> afterGetFileActive = NO_HOOK;

    SimDevice(SimKernel kernel, SimDeviceSpec spec, boolean memoryEnabled) {
        this.kernel = kernel;
        this.spec = spec;
        this.commandMemory = memoryEnabled;
    }

    @Override
    public String id() {
        return spec.id();
    }

    public SimDeviceSpec spec() {
        return spec;
    }

    private void requireOpen(String op) throws KernelException {
        if (!open) throw new KernelException(op, Errno.EBADF, "device fd is closed");
    }

    @Override
    public DeviceInfo info() throws KernelException {
        requireOpen(Ops.GET_INFO);
        kernel.faults().enter("get_info", Ops.GET_INFO);
        int flags = DeviceInfo.FLAG_PCI | (spec.resetMethod() ? DeviceInfo.FLAG_RESET : 0);
        return new DeviceInfo(flags, Region.NUM_REGIONS, 5);
    }

    @Override
    public Region region(int index) throws KernelException {
        requireOpen(Ops.GET_REGION_INFO);
        kernel.faults().enter("get_region_info", Ops.GET_REGION_INFO);
        if (index < 0 || index >= Region.NUM_REGIONS) throw new KernelException(Ops.GET_REGION_INFO, Errno.EINVAL);
        long offset = (long) index << 40;
        String name = Region.standardName(index);
        if (index <= Region.BAR5) {
            SimRegionSpec r = spec.bar(index);
            if (r == null) return new Region(index, name, 0, 0, offset, RegionKind.ABSENT, false, 0);
            int flags = Region.FLAG_READ | Region.FLAG_WRITE;
            if (r.kind() == RegionKind.MMIO && r.size() >= PAGE) flags |= Region.FLAG_MMAP;
            return new Region(index, name, r.size(), flags, offset, r.kind(), r.prefetchable(), r.address());
        }
        if (index == Region.CONFIG) {
            return new Region(index, name, PCI_CONFIG_SIZE, Region.FLAG_READ | Region.FLAG_WRITE, offset,
                    RegionKind.CONFIG, false, 0);
        }
        // no option ROM and no VGA on the simulated functions: Linux reports a size-0 ROM and answers EINVAL for
        // the VGA region, which the SPI reports as absent (as the Linux backend does)
        return new Region(index, name, 0, 0, offset, RegionKind.ABSENT, false, 0);
    }

    /** vfio_ioctl_device_feature + vfio_pci_core_feature_dma_buf, checks in kernel order (§2). */
    @Override
    public DmaBuf featureDmaBuf(DmaBufRequest q) throws KernelException {
        String op = Ops.FEATURE_DMA_BUF;
        requireOpen(op);
        SimFaults f = kernel.faults();
        f.enter("feature.copy_header", op);                                            // 1 EFAULT (injected)
        if (Integer.compareUnsigned(q.argsz(), DmaBufRequest.HEADER_SIZE) < 0) throw einval(op, "argsz < 8");
        int flags = q.featureFlags();
        if ((flags & ~(FEATURE_MASK | GET | SET | PROBE)) != 0) throw einval(op, "unknown feature flags");
        if ((flags & (GET | SET)) == (GET | SET) && (flags & PROBE) == 0) throw einval(op, "GET and SET");
        if ((flags & FEATURE_MASK) != DmaBufRequest.FEATURE_DMA_BUF) {
            throw new KernelException(op, Errno.ENOTTY, "feature " + (flags & FEATURE_MASK) + " not supported");
        }
        if (!spec.dmabufSupported()) throw new KernelException(op, Errno.ENOTTY, "CONFIG_VFIO_PCI_DMABUF=n");
        if (spec.variantDriver()) throw new KernelException(op, Errno.EOPNOTSUPP, "driver has no get_dmabuf_phys");
        if ((flags & SET) != 0) throw einval(op, "SET is not supported");
        if ((flags & PROBE) != 0) return null;                                           // 8: PROBE answers 0
        if ((flags & GET) == 0) throw einval(op, "neither GET nor SET");
        if (Integer.compareUnsigned(q.argsz() - DmaBufRequest.HEADER_SIZE, DmaBufRequest.BODY_SIZE) < 0) {
            throw einval(op, "argsz too small for the body");
        }
        f.enter("feature.copy_body", op);                                              // 11 EFAULT (injected)
        if (q.nrRanges() == 0) throw einval(op, "nr_ranges is 0");
        if (q.flags() != 0) throw einval(op, "flags must be 0");
        int bar = q.regionIndex();
        SimRegionSpec region = Integer.compareUnsigned(bar, 6) < 0 ? spec.bar(bar) : null;
        if (region == null) throw new KernelException(op, Errno.ENODEV, "region " + Integer.toUnsignedString(bar) + " has no BAR");
        long n = Integer.toUnsignedLong(q.nrRanges());
        if (n * DmaBufRequest.RANGE_SIZE > KMALLOC_MAX) throw new KernelException(op, Errno.ENOMEM, "range array");
        f.enter("feature.copy_ranges", op);                                            // 14
        // the kernel copies nr_ranges entries from user memory whatever argsz says; past what the caller
        // supplied the copy faults
        if (n > q.ranges().size()) throw new KernelException(op, Errno.EFAULT, "ranges past the buffer");
        List<DmaRange> ranges = q.ranges().subList(0, (int) n);
        long sum = 0;
        for (DmaRange r : ranges) {                                                     // 15
            if (r.length() == 0) throw einval(op, "zero length");
            if (Long.remainderUnsigned(r.offset(), PAGE) != 0) throw einval(op, "offset not page aligned");
            if (Long.remainderUnsigned(r.length(), PAGE) != 0) throw einval(op, "length not page aligned");
            long s = sum + r.length();
            if (Long.compareUnsigned(s, sum) < 0) throw einval(op, "sum of lengths overflows");
            sum = s;
        }
        if (sum < 0) throw einval(op, "size has bit 63 set");
        f.enter("feature.alloc_priv", op);                                             // 16 ENOMEM (injected)
        if (region.kind() != RegionKind.MMIO || region.size() < PAGE) {                 // 17
            throw einval(op, "BAR" + bar + " has no P2P provider (" + (region.kind() == RegionKind.IO ? "I/O port" : "smaller than a page") + ")");
        }
        // vfio_pci_core_fill_phys_vec: pci_resource_start + offset, then + length, with check_add_overflow (u64
        // phys_addr_t): a wrap is EOVERFLOW; an end past start + pci_resource_len is EINVAL
        long start = region.address();
        for (DmaRange r : ranges) {                                                     // 18, 19
            long a = start + r.offset();
            if (Long.compareUnsigned(a, start) < 0) throw new KernelException(op, Errno.EOVERFLOW, "BAR start + offset");
            long end = a + r.length();
            if (Long.compareUnsigned(end, a) < 0) throw new KernelException(op, Errno.EOVERFLOW, "BAR start + offset + length");
            if (Long.compareUnsigned(end, start + region.size()) > 0) {
                throw einval(op, "range " + r + " exceeds BAR" + bar + " (size 0x" + Long.toHexString(region.size()) + ")");
            }
        }
        return create(q, bar, ranges, sum);
    }

    private static KernelException einval(String op, String detail) {
        return new KernelException(op, Errno.EINVAL, detail);
    }

    private DmaBuf create(DmaBufRequest q, int bar, List<DmaRange> ranges, long size) throws KernelException {
        String op = Ops.FEATURE_DMA_BUF;
        SimFaults f = kernel.faults();
        memoryLock.writeLock().lock();
        try {
            if (!open) throw new KernelException(op, Errno.ENODEV, "device is unregistering");   // 20
            registrations++;
        } finally {
            memoryLock.writeLock().unlock();
        }
        SimDmaBuf buf = new SimDmaBuf(this, bar, ranges, size, kernel.deferred(), kernel.semantics());
        int fd = -1;
        boolean linked = false;
        try {
            f.enter("feature.dma_buf_export", op);                                     // 21 ENOMEM (injected)
            fd = Memfd.create("vfio-dmabuf:" + spec.id() + ":bar" + bar, size, q.openFlags());
            memoryLock.writeLock().lock();
            try {
                buf.setInitialRevoked(!memoryEnabledLocked());
                dmabufs.add(buf);
                linked = true;
            } finally {
                memoryLock.writeLock().unlock();
            }
            f.enter("feature.fd_install", op);                                         // 22 EMFILE (injected)
            return new SimDmaBufFile(buf, fd);
        } catch (KernelException | RuntimeException e) {
            // the error path puts everything back, once (the 6.19.11 double-free fix)
            memoryLock.writeLock().lock();
            try {
                if (linked) dmabufs.remove(buf);
                registrations--;
            } finally {
                memoryLock.writeLock().unlock();
            }
            buf.clearBackPointer();
            if (fd >= 0) Fd.closeQuietly(Fd.adopt(fd));
            throw e;
        }
    }

    /** The kernel's memory_enabled predicate: D0 assumed, not a VF, so the virtual COMMAND.MEMORY bit. */
    private boolean memoryEnabledLocked() {
        return commandMemory;
    }

    @Override
    public boolean memoryEnabled() throws KernelException {
        requireOpen(Ops.SET_MEMORY);
        return commandMemory;
    }

    @Override
    public void setMemoryEnabled(boolean enabled) throws KernelException {
        requireOpen(Ops.SET_MEMORY);
        kernel.faults().enter("config.write", Ops.SET_MEMORY);
        memoryLock.writeLock().lock();
        try {
            if (!enabled && commandMemory) move(true, "pci_command");   // before: clearing MEMORY revokes
            commandMemory = enabled;
            if (memoryEnabledLocked()) move(false, "pci_command");      // after: any COMMAND write restores
        } finally {
            memoryLock.writeLock().unlock();
        }
    }

    /** VFIO_DEVICE_RESET (§9): revoke, try-reset, restore if memory is enabled whatever the reset answered. */
    @Override
    public void reset() throws KernelException {
        requireOpen(Ops.RESET);
        kernel.faults().enter("reset.ioctl", Ops.RESET);
        if (!spec.resetMethod()) throw new KernelException(Ops.RESET, Errno.EINVAL, "device has no reset method");
        KernelException result = null;
        memoryLock.writeLock().lock();
        try {
            move(true, "reset");
            try {
                kernel.faults().enter("reset.try_reset", Ops.RESET);    // EAGAIN: device lock contended, ENOTTY...
                awaitResetDone();
            } catch (KernelException e) {
                result = e;   // the try-lock failed: no reset happened, so there was nothing to wait for
            }
            // pci_try_reset_function saves and restores the command register around the reset
            if (memoryEnabledLocked()) move(false, "reset");
        } finally {
            memoryLock.writeLock().unlock();
        }
        if (result != null) throw result;
    }

    /**
     * The reset method's own wait, with memory_lock held for write as the kernel holds it: {@code pcie_flr}
     * initiates the FLR and sleeps 100 ms before it polls the function, so every VFIO_DEVICE_RESET of a device with
     * an FLR takes at least that long. The thread sleeps; the caller must not be an event loop.
     */
    private void awaitResetDone() {
        long end = System.nanoTime() + java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(spec.resetMillis());
        for (long left; (left = end - System.nanoTime()) > 0; ) java.util.concurrent.locks.LockSupport.parkNanos(left);
    }

    /**
     * What sleeps in this model: a reset (its reset method's wait, {@link SimDeviceSpec#resetMillis()}), a close (on
     * 7.1 its drain waits for importers), a memory-off on 7.1 (its revoke waits until every importer has unmapped).
     * An export and a memory-on take memory_lock only for list and flag updates and never wait. A call that a test
     * may hold inside the model (a step hook or a planned delay, a hook in the revoke/restore walk) may sleep too.
     */
    @Override
    public boolean maySleep(Call call) {
        SimFaults f = kernel.faults();
        boolean walkHooked = afterGetFileActive != NO_HOOK;
        return switch (call) {
            case RESET, CLOSE -> true;
            case EXPORT -> f.mayHold("feature.");
            case MEMORY_ON -> walkHooked || f.mayHold("config.");
            case MEMORY_OFF -> kernel.semantics() == SimSemantics.V7_1 || walkHooked || f.mayHold("config.");
        };
    }

    /** vfio_pci_dma_buf_move: caller holds memory_lock for write. */
    private void move(boolean revoke, String trigger) {
        forEachActive(trigger, revoke, b -> b.move(revoke));
    }

    /**
     * Walks the dma-buf list as the kernel does under memory_lock: {@code get_file_active} on each entry (an entry
     * whose release has begun is skipped), {@code action} (true when it notified the importers), then {@code fput},
     * which may drop the last reference: the release is deferred, so holding memory_lock is safe. Traced for tests.
     */
    private void forEachActive(String trigger, boolean revoke, java.util.function.Predicate<SimDmaBuf> action) {
        List<Integer> notified = new ArrayList<>(), skipped = new ArrayList<>();
        int listed = dmabufs.size();
        for (SimDmaBuf b : List.copyOf(dmabufs)) {
            if (!b.tryGetFile()) {
                skipped.add(b.inode());
                continue;
            }
            afterGetFileActive.accept(b);
            if (action.test(b)) notified.add(b.inode());
            b.fput();
        }
        trace(new MoveTrace(trigger, revoke, listed, notified, skipped));
    }

    /** Called by a deferred release: unlinks under memory_lock unless cleanup already did. */
    void unlinkOnRelease(SimDmaBuf b) {
        memoryLock.writeLock().lock();
        try {
            if (b.device() != this) return; // cleanup got there first
            dmabufs.remove(b);
            b.clearBackPointer();
            dropRegistrationLocked();
        } finally {
            memoryLock.writeLock().unlock();
        }
    }

    private void dropRegistrationLocked() {
        registrations--;
        if (registrations < 0) throw new IllegalStateException("device registration refcount underflow");
    }

    /** Last close: cleanup (7.1+: drain with a revoke first), every remaining dma-buf detached for good. */
    @Override
    public void close() {
        if (!open) return;
        memoryLock.writeLock().lock();
        try {
            boolean drained = kernel.semantics() == SimSemantics.V7_1;
            if (drained) move(true, "close");
            forEachActive("cleanup", true, b -> {
                dmabufs.remove(b);
                b.detachForGood(!drained);
                dropRegistrationLocked();
                return true;
            });
            open = false;
        } finally {
            memoryLock.writeLock().unlock();
        }
        kernel.closed(this);
    }

    public boolean isOpen() {
        return open;
    }

    // ---- for tests -----------------------------------------------------------------------------------------

    /** Runs {@code hook} inside every revoke/restore pass right after a successful {@code get_file_active}. */
    public void afterGetFileActive(Consumer<SimDmaBuf> hook) {
        afterGetFileActive = hook == null ? NO_HOOK : hook;
    }

    private void trace(MoveTrace t) {
        synchronized (traces) {
            traces.addLast(t);
            if (traces.size() > 1024) traces.removeFirst();
        }
    }

    public List<MoveTrace> traces() {
        synchronized (traces) {
            return List.copyOf(traces);
        }
    }

    /** The dma-bufs on the device's list now. */
    public List<SimDmaBuf> listed() {
        memoryLock.readLock().lock();
        try {
            return List.copyOf(dmabufs);
        } finally {
            memoryLock.readLock().unlock();
        }
    }

    public int registrations() {
        memoryLock.readLock().lock();
        try {
            return registrations;
        } finally {
            memoryLock.readLock().unlock();
        }
    }
}

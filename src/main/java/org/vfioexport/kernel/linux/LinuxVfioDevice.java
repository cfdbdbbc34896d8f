package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.uapi.PciRegs;
import org.vfioexport.ffm.uapi.VfioIoctls;
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

import java.util.List;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One open VFIO device fd. Calls share a read lock and {@link #close()} takes the write lock, so the fd number
 * is never used after it was closed (and possibly reused by another open in this process).
 */
final class LinuxVfioDevice implements VfioDevice {
    // PCI config space (include/uapi/linux/pci_regs.h, defined in ffm.uapi.PciRegs)
    static final int PCI_COMMAND = PciRegs.PCI_COMMAND, PCI_COMMAND_MEMORY = PciRegs.PCI_COMMAND_MEMORY,
            PCI_BASE_ADDRESS_0 = PciRegs.PCI_BASE_ADDRESS_0;
    static final int PCI_BASE_ADDRESS_SPACE_IO = PciRegs.PCI_BASE_ADDRESS_SPACE_IO,
            PCI_BASE_ADDRESS_MEM_PREFETCH = PciRegs.PCI_BASE_ADDRESS_MEM_PREFETCH;

    private final VfioSyscalls sys;
    private final String id;
    private final OpenedDevice opened;
    private final long[] resourceStarts;
    private final IommufdImportSpace importSpace;
    private final DeviceImporters importers = new DeviceImporters();
    private final ReadWriteLock lock = new ReentrantReadWriteLock();
    private boolean closed;
    private volatile long configOffset = -1;

    /** @param resourceStarts sysfs {@code resource} starts of BAR0..BAR5 and the ROM ({@link Sysfs#resourceStarts}) */
    LinuxVfioDevice(VfioSyscalls sys, String id, OpenedDevice opened, long[] resourceStarts,
                    IommufdImportSpace importSpace) {
        this.sys = sys;
        this.id = id;
        this.opened = opened;
        this.resourceStarts = resourceStarts.clone();
        this.importSpace = importSpace;
    }

    /** The iommufd importers of this device's dma-bufs (for tests). */
    DeviceImporters importers() {
        return importers;
    }

    @Override
    public String id() {
        return id;
    }

    /** The device node it came from: {@code /dev/vfio/N} group number or the cdev path. */
    String openedThrough() {
        return opened.path();
    }

    @FunctionalInterface
    private interface Call<T> {
        T on(int fd) throws PosixException, KernelException;
    }

    private <T> T call(String op, Call<T> c) throws KernelException {
        lock.readLock().lock();
        try {
            if (closed) throw new KernelException(op, Errno.EBADF, id + " is closed");
            return c.on(opened.fd());
        } catch (PosixException e) {
            throw new KernelException(op, e.errno(), e.op());
        } finally {
            lock.readLock().unlock();
        }
    }

    @Override
    public DeviceInfo info() throws KernelException {
        return call(Ops.GET_INFO, fd -> {
            VfioIoctls.DeviceInfoReply r = sys.deviceInfo(fd);
            return new DeviceInfo(r.flags(), r.numRegions(), r.numIrqs());
        });
    }

    @Override
    public Region region(int index) throws KernelException {
        VfioIoctls.RegionInfoReply r;
        try {
            r = call(Ops.GET_REGION_INFO, fd -> sys.regionInfo(fd, index));
        } catch (KernelException e) {
            // vfio-pci counts the VGA region in num_regions but answers EINVAL for it on a device without VGA
            // (seen on 7.2): report it as the absent region it is, so that listing all regions works
            if (index != Region.VGA || e.errno() != Errno.EINVAL.value) throw e;
            return new Region(index, Region.standardName(index), 0, 0, 0, RegionKind.ABSENT, false, 0);
        }
        RegionKind kind;
        boolean prefetchable = false;
        if (r.size() == 0) {
            kind = RegionKind.ABSENT;
        } else if (index <= Region.BAR5) {
            // vfio-pci keeps the BAR's low flag bits in its virtual config space
            int bar = configDword(PCI_BASE_ADDRESS_0 + 4 * index);
            kind = (bar & PCI_BASE_ADDRESS_SPACE_IO) != 0 ? RegionKind.IO : RegionKind.MMIO;
            prefetchable = kind == RegionKind.MMIO && (bar & PCI_BASE_ADDRESS_MEM_PREFETCH) != 0;
        } else {
            kind = switch (index) {
                case Region.ROM -> RegionKind.ROM;
                case Region.CONFIG -> RegionKind.CONFIG;
                case Region.VGA -> RegionKind.VGA;
                default -> RegionKind.MMIO; // device-specific regions
            };
        }
        long address = r.size() != 0 && index < resourceStarts.length ? resourceStarts[index] : 0;
        return new Region(index, Region.standardName(index), r.size(), r.flags(), r.offset(), kind, prefetchable, address);
    }

    @Override
    public DmaBuf featureDmaBuf(DmaBufRequest q) throws KernelException {
        List<DmaRange> ranges = q.ranges();
        long[] offsets = new long[ranges.size()], lengths = new long[ranges.size()];
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = ranges.get(i).offset();
            lengths[i] = ranges.get(i).length();
        }
        int rc = call(Ops.FEATURE_DMA_BUF, fd -> sys.featureDmaBuf(fd, q.argsz(), q.featureFlags(),
                q.regionIndex(), q.openFlags(), q.flags(), q.nrRanges(), offsets, lengths));
        if (q.isProbe()) return null;
        // a GET answered with a new fd; its size is the sum of the lengths the kernel accepted
        return new LinuxDmaBuf(sys, rc, q.size(), importSpace, importers);
    }

    /**
     * Null when this device can export dma-bufs, otherwise why not: ENOTTY means a kernel without the feature
     * (before 6.19, or CONFIG_VFIO_PCI_DMABUF off), EOPNOTSUPP a variant driver without the exporter op.
     */
    String dmaBufUnsupportedReason() throws KernelException {
        try {
            probeDmaBuf();
            return null;
        } catch (KernelException e) {
            if (e.errno() == Errno.ENOTTY.value) {
                return "the kernel has no VFIO dma-buf export (ENOTTY): it needs Linux 6.19+ with CONFIG_VFIO_PCI_DMABUF";
            }
            if (e.errno() == Errno.EOPNOTSUPP.value) {
                return "the driver bound to " + id + " cannot export dma-bufs (EOPNOTSUPP): a vfio-pci variant driver";
            }
            throw e;
        }
    }

    /**
     * Only the export cannot sleep here. {@code vfio_pci_core_feature_dma_buf} takes {@code memory_lock} and the
     * new buffer's reservation lock for a list insertion; the holders of {@code memory_lock} that could make it
     * wait long are the reset, the PCI_COMMAND write and the close, which the device layer already runs
     * exclusively of exports, and nobody else holds a new buffer's reservation lock. A reset waits for the
     * hardware (pcie_flr: 100 ms after initiating), a COMMAND write takes every buffer's reservation lock, which
     * importers hold while they map (and on 7.1 waits for them to unmap), and a close may reset the function.
     */
    @Override
    public boolean maySleep(VfioDevice.Call call) {
        return call != VfioDevice.Call.EXPORT;
    }

    /**
     * The kernel revokes every dma-buf of the device, resets it, and restores them when memory decoding is on
     * (pci_try_reset_function keeps COMMAND); the importers are told in that order. They are told when the
     * ioctl reached the kernel and was not refused before the revoke: EINVAL is a device without a reset method
     * (vfio_pci_ioctl_reset returns before touching the buffers); any later failure may come after the revoke,
     * and a remap of a buffer still usable only replaces its mapping (ENODEV leaves a revoked one as it is).
     */
    @Override
    public void reset() throws KernelException {
        boolean[] issued = new boolean[1];
        boolean refused = false;
        try {
            call(Ops.RESET, fd -> {
                issued[0] = true;
                sys.reset(fd);
                return null;
            });
        } catch (KernelException e) {
            refused = e.errno() == Errno.EINVAL.value;
            throw e;
        } finally {
            if (issued[0] && !refused) {
                importers.revoked(false);
                importers.restored();
            }
        }
    }

    @Override
    public void setMemoryEnabled(boolean enabled) throws KernelException {
        // read-modify-write: the other COMMAND bits (I/O, bus master, INTx disable) stay as they are
        call(Ops.SET_MEMORY, fd -> {
            long at = configOffset(fd) + PCI_COMMAND;
            byte[] cmd = sys.pread(fd, at, 2);
            int v = (cmd[0] & 0xff) | (cmd[1] & 0xff) << 8;
            v = enabled ? v | PCI_COMMAND_MEMORY : v & ~PCI_COMMAND_MEMORY;
            sys.pwrite(fd, at, new byte[] {(byte) v, (byte) (v >>> 8)});
            return null;
        });
        // after the write: the kernel revokes (cleared) or restores (set) under memory_lock inside the pwrite
        if (enabled) importers.restored();
        else importers.revoked(false);
    }

    @Override
    public boolean memoryEnabled() throws KernelException {
        return call(Ops.SET_MEMORY, fd -> {
            byte[] cmd = sys.pread(fd, configOffset(fd) + PCI_COMMAND, 2);
            return (cmd[0] & PCI_COMMAND_MEMORY) != 0;
        });
    }

    /** pread of a region through the device fd, at {@code at} bytes into region {@code index} (lab tests). */
    byte[] readRegion(int index, long at, int count) throws KernelException {
        long base = region(index).offset();
        return call(Ops.GET_REGION_INFO, fd -> sys.pread(fd, base + at, count));
    }

    /** pwrite of a region through the device fd (lab tests: a pattern into the NVMe CMB). */
    void writeRegion(int index, long at, byte[] data) throws KernelException {
        long base = region(index).offset();
        call(Ops.GET_REGION_INFO, fd -> {
            sys.pwrite(fd, base + at, data);
            return null;
        });
    }

    private int configDword(int where) throws KernelException {
        return call(Ops.GET_REGION_INFO, fd -> {
            byte[] b = sys.pread(fd, configOffset(fd) + where, 4);
            return (b[0] & 0xff) | (b[1] & 0xff) << 8 | (b[2] & 0xff) << 16 | (b[3] & 0xff) << 24;
        });
    }

    /** Where the config region starts in the device fd (read from the kernel, never computed). */
    private long configOffset(int fd) throws PosixException {
        long o = configOffset;
        if (o < 0) {
            o = sys.regionInfo(fd, Region.CONFIG).offset();
            configOffset = o;
        }
        return o;
    }

    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (closed) return;
            closed = true;
            sys.closeQuietly(opened.fd());
            opened.afterClose().run();
            // vfio_pci_dma_buf_cleanup: the device's dma-bufs are revoked for good
            importers.revoked(true);
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return "vfio device " + id + " (" + opened.path() + ", fd " + opened.fd() + ")";
    }
}

package org.vfioexport.kernel;

import org.vfioexport.ffm.posix.Errno;

import java.util.List;

/**
 * An open VFIO device fd, shaped after the uAPI. Thread-safe: the kernel serialises what needs it (its
 * memory_lock). Some calls can sleep (a reset waits for the hardware, a revoke may wait for importers): the
 * device says which through {@link #maySleep(Call)}, and callers run those off event loops.
 */
public interface VfioDevice extends AutoCloseable {
    /** The calls the device layer makes while a device is in service, for {@link #maySleep(Call)}. */
    enum Call {
        /** {@code VFIO_DEVICE_FEATURE} GET of a dma-buf. */
        EXPORT,
        /** {@code VFIO_DEVICE_RESET}. */
        RESET,
        /** PCI_COMMAND.MEMORY set (restores the dma-bufs). */
        MEMORY_ON,
        /** PCI_COMMAND.MEMORY cleared (revokes the dma-bufs). */
        MEMORY_OFF,
        /** The device fd's last close (cleanup of the dma-bufs; the kernel may reset the function). */
        CLOSE
    }

    /**
     * Whether {@code call} can sleep: wait for hardware (a reset), for importers (a revoke that waits until they
     * unmap, or a reservation lock they hold), or for a lock held across such a wait by someone other than the
     * caller's own device discipline. A call that cannot sleep may run on an event loop; one that can must not.
     * The default is the safe answer for every call.
     */
    default boolean maySleep(Call call) {
        return true;
    }

    /** The PCI address, {@code DDDD:BB:DD.F}. */
    String id();

    /** {@code VFIO_DEVICE_GET_INFO}. */
    DeviceInfo info() throws KernelException;

    /** {@code VFIO_DEVICE_GET_REGION_INFO} for one index. */
    Region region(int index) throws KernelException;

    /** Regions 0 .. numRegions-1. */
    default List<Region> regions() throws KernelException {
        int n = info().numRegions();
        Region[] out = new Region[n];
        for (int i = 0; i < n; i++) out[i] = region(i);
        return List.of(out);
    }

    /**
     * {@code VFIO_DEVICE_FEATURE} with the dma-buf feature, exactly as the request says. Returns 0 for a PROBE,
     * or a new dma-buf for a GET (the ioctl's fd), wrapped so it is closed once.
     *
     * @return {@code null} for a successful PROBE, the dma-buf otherwise
     */
    DmaBuf featureDmaBuf(DmaBufRequest request) throws KernelException;

    /** PROBE: returns normally when the device can export dma-bufs; ENOTTY / EOPNOTSUPP otherwise. */
    default void probeDmaBuf() throws KernelException {
        featureDmaBuf(DmaBufRequest.probe());
    }

    default DmaBuf exportDmaBuf(DmaBufRequest request) throws KernelException {
        DmaBuf b = featureDmaBuf(request);
        if (b == null) throw new KernelException(Ops.FEATURE_DMA_BUF, Errno.EINVAL, "not a GET request");
        return b;
    }

    /** {@code VFIO_DEVICE_RESET}: revokes every dma-buf, resets, restores them if memory decoding is on. */
    void reset() throws KernelException;

    /** Sets or clears the MEMORY bit of PCI_COMMAND through the config region. */
    void setMemoryEnabled(boolean enabled) throws KernelException;

    /** The MEMORY bit of the (virtual) PCI_COMMAND. */
    boolean memoryEnabled() throws KernelException;

    /** Closes the device fd: remaining dma-bufs are detached (revoked for good), their fds stay valid. */
    @Override
    void close();
}

package org.vfioexport.kernel;

import java.util.List;

/**
 * An open VFIO device fd, shaped after the uAPI. Every call may block (it is an ioctl or a config-space access):
 * callers run them off event loops. Thread-safe: the kernel serialises what needs it (its memory_lock).
 */
public interface VfioDevice extends AutoCloseable {
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

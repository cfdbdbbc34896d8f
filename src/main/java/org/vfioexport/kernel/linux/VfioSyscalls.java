package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.uapi.VfioIoctls.DeviceInfoReply;
import org.vfioexport.ffm.uapi.VfioIoctls.RegionInfoReply;

/**
 * Every syscall the Linux backend makes on a VFIO or iommufd fd, with plain Java arguments and results: the seam
 * between the backend's own logic (group sharing, the two open paths, region decoding, the config-offset cache,
 * cleanup) and the kernel. {@link FfmVfioSyscalls} is the real one; the unit tests swap in a model of
 * {@code /dev/vfio} and {@code /dev/iommu} so that this logic runs without a VM, as rust-vmm swaps its syscall
 * layer under test. Sysfs and the device nodes' existence are plain files and are read through {@link Sysfs} and
 * {@link java.nio.file.Files}, which a test points at a directory of its own.
 *
 * <p>A failure is a {@link PosixException} carrying the C name of the call and the errno, exactly as the FFM
 * downcalls report it. An fd is an {@code int} the caller owns and closes through {@link #close(int)}.
 */
interface VfioSyscalls {
    /** {@code open(path, O_RDWR | O_CLOEXEC)}: the only way the backend opens a node. */
    int open(String path) throws PosixException;

    /** {@code close(fd)}. As on Linux, the fd is released even when this reports an error. */
    void close(int fd) throws PosixException;

    /** Closes an fd on a cleanup path, where a failure can only be logged (the fd is released anyway). */
    default void closeQuietly(int fd) {
        if (fd < 0) return;
        try {
            close(fd);
        } catch (PosixException e) {
            org.slf4j.LoggerFactory.getLogger(VfioSyscalls.class).warn("close fd {}: {}", fd, e.getMessage());
        }
    }

    /** {@code fcntl(fd, F_DUPFD_CLOEXEC, 0)}. */
    int dup(int fd) throws PosixException;

    // ---- container ---------------------------------------------------------------------------------------

    int getApiVersion(int container) throws PosixException;

    boolean checkExtension(int container, int extension) throws PosixException;

    void setIommu(int container, int type) throws PosixException;

    // ---- group -------------------------------------------------------------------------------------------

    int groupStatus(int group) throws PosixException;

    void groupSetContainer(int group, int container) throws PosixException;

    int groupGetDeviceFd(int group, String name) throws PosixException;

    // ---- device ------------------------------------------------------------------------------------------

    DeviceInfoReply deviceInfo(int device) throws PosixException;

    RegionInfoReply regionInfo(int device, int index) throws PosixException;

    void reset(int device) throws PosixException;

    /** {@code VFIO_DEVICE_FEATURE} with a dma-buf body, field for field; 0 for a PROBE, the new fd for a GET. */
    int featureDmaBuf(int device, int argsz, int featureFlags, int regionIndex, int openFlags, int flags,
                      int nrRanges, long[] offsets, long[] lengths) throws PosixException;

    // ---- device cdev + iommufd ---------------------------------------------------------------------------

    int bindIommufd(int device, int iommufd) throws PosixException;

    int ioasAlloc(int iommufd) throws PosixException;

    void attachIommufdPt(int device, int ptId) throws PosixException;

    /** {@code IOMMU_DESTROY} of an IOAS. */
    void iommuDestroy(int iommufd, int id) throws PosixException;

    /** {@code IOMMU_IOAS_MAP_FILE}, readable and writeable; returns the IOVA (the fixed one, or the kernel's). */
    long ioasMapFile(int iommufd, int ioas, int fd, long start, long length, long iova, boolean fixedIova)
            throws PosixException;

    /** {@code IOMMU_IOAS_UNMAP}; returns the bytes unmapped. */
    long ioasUnmap(int iommufd, int ioas, long iova, long length) throws PosixException;

    // ---- region access -----------------------------------------------------------------------------------

    /** {@code pread} of exactly {@code count} bytes; a short read is EIO. */
    byte[] pread(int device, long offset, int count) throws PosixException;

    /** {@code pwrite} of all of {@code data}; a short write is EIO. */
    void pwrite(int device, long offset, byte[] data) throws PosixException;
}

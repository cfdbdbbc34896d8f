package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.uapi.VfioIoctls;
import org.vfioexport.ffm.uapi.VfioIoctls.DeviceInfoReply;
import org.vfioexport.ffm.uapi.VfioIoctls.RegionInfoReply;

/** The real syscalls: libc through the FFM downcalls of {@code ffm.posix} and {@code ffm.uapi}. */
final class FfmVfioSyscalls implements VfioSyscalls {
    static final FfmVfioSyscalls INSTANCE = new FfmVfioSyscalls();

    private FfmVfioSyscalls() {}

    @Override
    public int open(String path) throws PosixException {
        return Posix.open(path, Posix.O_RDWR | Posix.O_CLOEXEC, 0);
    }

    @Override
    public void close(int fd) throws PosixException {
        Posix.close(fd);
    }

    @Override
    public int dup(int fd) throws PosixException {
        return Posix.dup(fd);
    }

    @Override
    public int getApiVersion(int container) throws PosixException {
        return VfioIoctls.getApiVersion(container);
    }

    @Override
    public boolean checkExtension(int container, int extension) throws PosixException {
        return VfioIoctls.checkExtension(container, extension);
    }

    @Override
    public void setIommu(int container, int type) throws PosixException {
        VfioIoctls.setIommu(container, type);
    }

    @Override
    public int groupStatus(int group) throws PosixException {
        return VfioIoctls.groupStatus(group);
    }

    @Override
    public void groupSetContainer(int group, int container) throws PosixException {
        VfioIoctls.groupSetContainer(group, container);
    }

    @Override
    public int groupGetDeviceFd(int group, String name) throws PosixException {
        return VfioIoctls.groupGetDeviceFd(group, name);
    }

    @Override
    public DeviceInfoReply deviceInfo(int device) throws PosixException {
        return VfioIoctls.deviceInfo(device);
    }

    @Override
    public RegionInfoReply regionInfo(int device, int index) throws PosixException {
        return VfioIoctls.regionInfo(device, index);
    }

    @Override
    public void reset(int device) throws PosixException {
        VfioIoctls.reset(device);
    }

    @Override
    public int featureDmaBuf(int device, int argsz, int featureFlags, int regionIndex, int openFlags, int flags,
                             int nrRanges, long[] offsets, long[] lengths) throws PosixException {
        return VfioIoctls.featureDmaBuf(device, argsz, featureFlags, regionIndex, openFlags, flags, nrRanges, offsets,
                lengths);
    }

    @Override
    public int bindIommufd(int device, int iommufd) throws PosixException {
        return VfioIoctls.bindIommufd(device, iommufd);
    }

    @Override
    public int ioasAlloc(int iommufd) throws PosixException {
        return VfioIoctls.ioasAlloc(iommufd);
    }

    @Override
    public void attachIommufdPt(int device, int ptId) throws PosixException {
        VfioIoctls.attachIommufdPt(device, ptId);
    }

    @Override
    public void iommuDestroy(int iommufd, int id) throws PosixException {
        VfioIoctls.iommuDestroy(iommufd, id);
    }

    @Override
    public long ioasMapFile(int iommufd, int ioas, int fd, long start, long length, long iova, boolean fixedIova)
            throws PosixException {
        return VfioIoctls.ioasMapFile(iommufd, ioas, fd, start, length, iova, fixedIova);
    }

    @Override
    public long ioasUnmap(int iommufd, int ioas, long iova, long length) throws PosixException {
        return VfioIoctls.ioasUnmap(iommufd, ioas, iova, length);
    }

    @Override
    public byte[] pread(int device, long offset, int count) throws PosixException {
        return VfioIoctls.pread(device, offset, count);
    }

    @Override
    public void pwrite(int device, long offset, byte[] data) throws PosixException {
        VfioIoctls.pwrite(device, offset, data);
    }
}

package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;

import java.nio.file.Path;

/**
 * The cdev path (CONFIG_VFIO_DEVICE_CDEV + CONFIG_IOMMUFD): open {@code /dev/vfio/devices/vfioN}, bind it to a
 * fresh {@code /dev/iommu} fd, and attach it to a new IO address space. Every other device ioctl gives EINVAL
 * before the bind. Each device gets its own iommufd, closed after the device fd.
 */
final class IommufdCdevPath {
    private final VfioSyscalls sys;
    private final Path devVfioDevices;
    private final Path devIommu;
    private final Sysfs sysfs;

    IommufdCdevPath(VfioSyscalls sys, Path devVfioDevices, Path devIommu, Sysfs sysfs) {
        this.sys = sys;
        this.devVfioDevices = devVfioDevices;
        this.devIommu = devIommu;
        this.sysfs = sysfs;
    }

    OpenedDevice open(String id) throws KernelException {
        String cdev = sysfs.vfioCdev(id).orElseThrow(() ->
                new KernelException(Ops.OPEN, Errno.ENODEV, id + " has no vfio-dev cdev"));
        int device = -1, iommufd = -1;
        String step = "open " + devVfioDevices.resolve(cdev);
        try {
            device = sys.open(devVfioDevices.resolve(cdev).toString());
            step = "open " + devIommu;
            iommufd = sys.open(devIommu.toString());
            step = "VFIO_DEVICE_BIND_IOMMUFD";
            sys.bindIommufd(device, iommufd);
            step = "IOMMU_IOAS_ALLOC";
            int ioas = sys.ioasAlloc(iommufd);
            step = "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
            sys.attachIommufdPt(device, ioas);
            int owned = iommufd;
            return new OpenedDevice(device, devVfioDevices.resolve(cdev).toString(), () -> sys.closeQuietly(owned));
        } catch (PosixException e) {
            sys.closeQuietly(device);
            sys.closeQuietly(iommufd);
            throw new KernelException(Ops.OPEN, e.errno(), step + " for " + id);
        }
    }
}

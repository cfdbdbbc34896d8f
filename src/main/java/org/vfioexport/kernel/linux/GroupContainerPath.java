package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.uapi.Vfio;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The legacy path: container ({@code /dev/vfio/vfio}) + group ({@code /dev/vfio/N}) with the type1 IOMMU, then
 * {@code VFIO_GROUP_GET_DEVICE_FD}. A group node can be open only once, so an open group (with its container)
 * is shared by the devices of that group and closed when the last of them closes.
 */
final class GroupContainerPath {
    private final VfioSyscalls sys;
    private final Path devVfio;
    private final Sysfs sysfs;
    private final Map<String, Group> groups = new HashMap<>();

    private static final class Group {
        final String name, node;
        final int groupFd, containerFd;
        int users;

        Group(String name, String node, int groupFd, int containerFd) {
            this.name = name;
            this.node = node;
            this.groupFd = groupFd;
            this.containerFd = containerFd;
        }
    }

    GroupContainerPath(VfioSyscalls sys, Path devVfio, Sysfs sysfs) {
        this.sys = sys;
        this.devVfio = devVfio;
        this.sysfs = sysfs;
    }

    synchronized OpenedDevice open(String id) throws KernelException {
        String groupNo = sysfs.iommuGroup(id).orElseThrow(() ->
                new KernelException(Ops.OPEN, Errno.ENODEV, id + " has no IOMMU group (is an IOMMU enabled?)"));
        Group g = groups.get(groupNo);
        if (g == null) {
            g = openGroup(groupNo);
            groups.put(groupNo, g);
        }
        int fd;
        try {
            fd = sys.groupGetDeviceFd(g.groupFd, id);
        } catch (PosixException e) {
            if (g.users == 0) closeGroup(g);
            throw new KernelException(Ops.OPEN, e.errno(), e.getMessage() + " for " + id + " in group " + g.name);
        }
        g.users++;
        Group opened = g;
        return new OpenedDevice(fd, g.node, () -> release(opened));
    }

    private Group openGroup(String groupNo) throws KernelException {
        // a kernel in unsafe no-IOMMU mode names the node noiommu-N and wants the NOIOMMU "IOMMU"
        Path node = devVfio.resolve(groupNo);
        int iommuType = Vfio.VFIO_TYPE1v2_IOMMU;
        if (!Files.exists(node) && Files.exists(devVfio.resolve("noiommu-" + groupNo))) {
            node = devVfio.resolve("noiommu-" + groupNo);
            iommuType = Vfio.VFIO_NOIOMMU_IOMMU;
        }
        int container = -1, group = -1;
        String step = "open " + devVfio.resolve("vfio");
        try {
            container = sys.open(devVfio.resolve("vfio").toString());
            step = "VFIO_GET_API_VERSION";
            int api = sys.getApiVersion(container);
            if (api != Vfio.VFIO_API_VERSION) {
                throw new KernelException(Ops.OPEN, Errno.EINVAL, "VFIO API version " + api + ", expected " + Vfio.VFIO_API_VERSION);
            }
            step = "VFIO_CHECK_EXTENSION";
            if (!sys.checkExtension(container, iommuType)) {
                throw new KernelException(Ops.OPEN, Errno.EINVAL, "the container does not support IOMMU type " + iommuType);
            }
            step = "open " + node;
            group = sys.open(node.toString());
            step = "VFIO_GROUP_GET_STATUS";
            if ((sys.groupStatus(group) & Vfio.VFIO_GROUP_FLAGS_VIABLE) == 0) {
                throw new KernelException(Ops.OPEN, Errno.EINVAL,
                        "IOMMU group " + groupNo + " is not viable: bind every device of the group to vfio-pci");
            }
            step = "VFIO_GROUP_SET_CONTAINER";
            sys.groupSetContainer(group, container);
            step = "VFIO_SET_IOMMU";
            sys.setIommu(container, iommuType);
            return new Group(groupNo, node.toString(), group, container);
        } catch (PosixException e) {
            sys.closeQuietly(group);
            sys.closeQuietly(container);
            throw new KernelException(Ops.OPEN, e.errno(), step + " (group " + groupNo + ")");
        } catch (KernelException e) {
            sys.closeQuietly(group);
            sys.closeQuietly(container);
            throw e;
        }
    }

    /** The groups open now, by number (for tests: a failed or finished open leaves none behind). */
    synchronized java.util.Set<String> openGroups() {
        return java.util.Set.copyOf(groups.keySet());
    }

    private synchronized void release(Group g) {
        if (--g.users == 0) closeGroup(g);
    }

    private void closeGroup(Group g) {
        groups.remove(g.name);
        sys.closeQuietly(g.groupFd);
        sys.closeQuietly(g.containerFd);
    }
}

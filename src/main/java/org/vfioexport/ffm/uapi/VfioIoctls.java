package org.vfioexport.ffm.uapi;

import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.vfioexport.ffm.uapi.Iommufd.*;
import static org.vfioexport.ffm.uapi.Vfio.*;

/**
 * The VFIO and iommufd ioctls with plain Java arguments and results, so that the backend above never handles
 * native memory. Each call fills its struct through the {@link Vfio}/{@link Iommufd} layouts; a failure is a
 * {@link PosixException} whose op is the ioctl's C name.
 */
public final class VfioIoctls {
    private VfioIoctls() {}

    /** {@code struct vfio_device_info} as the kernel filled it. */
    public record DeviceInfoReply(int flags, int numRegions, int numIrqs) {}

    /** {@code struct vfio_region_info} as the kernel filled it. */
    public record RegionInfoReply(int index, int flags, long size, long offset) {}

    private static long off(StructLayout s, String field) {
        return s.byteOffset(PathElement.groupElement(field));
    }

    private static MemorySegment withArgsz(Arena a, StructLayout s, String sizeField) {
        MemorySegment m = a.allocate(s);
        m.set(JAVA_INT, off(s, sizeField), (int) s.byteSize());
        return m;
    }

    // ---- container ---------------------------------------------------------------------------------------

    public static int getApiVersion(int container) throws PosixException {
        return Posix.ioctl(container, VFIO_GET_API_VERSION, 0, "VFIO_GET_API_VERSION");
    }

    /** True when the container supports {@code extension} (e.g. {@link Vfio#VFIO_TYPE1v2_IOMMU}). */
    public static boolean checkExtension(int container, int extension) throws PosixException {
        return Posix.ioctl(container, VFIO_CHECK_EXTENSION, extension, "VFIO_CHECK_EXTENSION") > 0;
    }

    public static void setIommu(int container, int type) throws PosixException {
        Posix.ioctl(container, VFIO_SET_IOMMU, type, "VFIO_SET_IOMMU");
    }

    // ---- group -------------------------------------------------------------------------------------------

    /** {@code vfio_group_status.flags}: {@link Vfio#VFIO_GROUP_FLAGS_VIABLE}, ..._CONTAINER_SET. */
    public static int groupStatus(int group) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = withArgsz(a, vfio_group_status, "argsz");
            Posix.ioctl(group, VFIO_GROUP_GET_STATUS, st, "VFIO_GROUP_GET_STATUS");
            return st.get(JAVA_INT, off(vfio_group_status, "flags"));
        }
    }

    public static void groupSetContainer(int group, int container) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fd = a.allocate(JAVA_INT);
            fd.set(JAVA_INT, 0, container);
            Posix.ioctl(group, VFIO_GROUP_SET_CONTAINER, fd, "VFIO_GROUP_SET_CONTAINER");
        }
    }

    /** The device fd for {@code name} (the PCI address) in this group. */
    public static int groupGetDeviceFd(int group, String name) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            return Posix.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, a.allocateFrom(name), "VFIO_GROUP_GET_DEVICE_FD");
        }
    }

    // ---- device ------------------------------------------------------------------------------------------

    public static DeviceInfoReply deviceInfo(int device) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, vfio_device_info, "argsz");
            Posix.ioctl(device, VFIO_DEVICE_GET_INFO, s, "VFIO_DEVICE_GET_INFO");
            return new DeviceInfoReply(s.get(JAVA_INT, off(vfio_device_info, "flags")),
                    s.get(JAVA_INT, off(vfio_device_info, "num_regions")),
                    s.get(JAVA_INT, off(vfio_device_info, "num_irqs")));
        }
    }

    public static RegionInfoReply regionInfo(int device, int index) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, vfio_region_info, "argsz");
            s.set(JAVA_INT, off(vfio_region_info, "index"), index);
            Posix.ioctl(device, VFIO_DEVICE_GET_REGION_INFO, s, "VFIO_DEVICE_GET_REGION_INFO");
            return new RegionInfoReply(s.get(JAVA_INT, off(vfio_region_info, "index")),
                    s.get(JAVA_INT, off(vfio_region_info, "flags")),
                    s.get(JAVA_LONG, off(vfio_region_info, "size")),
                    s.get(JAVA_LONG, off(vfio_region_info, "offset")));
        }
    }

    public static void reset(int device) throws PosixException {
        Posix.ioctl(device, VFIO_DEVICE_RESET, 0, "VFIO_DEVICE_RESET");
    }

    /**
     * {@code VFIO_DEVICE_FEATURE} carrying a {@code vfio_device_feature_dma_buf}, written field for field as
     * given, malformed values included. The buffer holds the header, the body and exactly {@code offsets.length}
     * ranges and ends right before an inaccessible page: when {@code nrRanges} claims more ranges than were
     * supplied, the kernel's copy runs into that page and fails with EFAULT, as it would in C, instead of reading
     * whatever heap memory happens to follow.
     *
     * @return the ioctl's result: 0 for a PROBE, the new dma-buf fd for a GET
     */
    public static int featureDmaBuf(int device, int argsz, int featureFlags, int regionIndex, int openFlags,
                                    int flags, int nrRanges, long[] offsets, long[] lengths) throws PosixException {
        if (offsets.length != lengths.length) throw new IllegalArgumentException("offsets and lengths differ in count");
        long body = vfio_device_feature.byteSize();
        long ranges = body + vfio_device_feature_dma_buf.byteSize();
        long length = ranges + vfio_region_dma_range.byteSize() * offsets.length;
        try (GuardedBuffer g = GuardedBuffer.endingAt(length)) {
            MemorySegment m = g.bytes();
            m.set(JAVA_INT, off(vfio_device_feature, "argsz"), argsz);
            m.set(JAVA_INT, off(vfio_device_feature, "flags"), featureFlags);
            MemorySegment b = m.asSlice(body);
            b.set(JAVA_INT, off(vfio_device_feature_dma_buf, "region_index"), regionIndex);
            b.set(JAVA_INT, off(vfio_device_feature_dma_buf, "open_flags"), openFlags);
            b.set(JAVA_INT, off(vfio_device_feature_dma_buf, "flags"), flags);
            b.set(JAVA_INT, off(vfio_device_feature_dma_buf, "nr_ranges"), nrRanges);
            for (int i = 0; i < offsets.length; i++) {
                MemorySegment r = m.asSlice(ranges + vfio_region_dma_range.byteSize() * i, vfio_region_dma_range);
                r.set(JAVA_LONG, off(vfio_region_dma_range, "offset"), offsets[i]);
                r.set(JAVA_LONG, off(vfio_region_dma_range, "length"), lengths[i]);
            }
            return Posix.ioctl(device, VFIO_DEVICE_FEATURE, m, "VFIO_DEVICE_FEATURE");
        }
    }

    // ---- device cdev + iommufd ---------------------------------------------------------------------------

    /** Binds a device cdev to an iommufd; returns {@code out_devid}. */
    public static int bindIommufd(int device, int iommufd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, vfio_device_bind_iommufd, "argsz");
            s.set(JAVA_INT, off(vfio_device_bind_iommufd, "iommufd"), iommufd);
            Posix.ioctl(device, VFIO_DEVICE_BIND_IOMMUFD, s, "VFIO_DEVICE_BIND_IOMMUFD");
            return s.get(JAVA_INT, off(vfio_device_bind_iommufd, "out_devid"));
        }
    }

    /** Allocates an IO address space; returns its id. */
    public static int ioasAlloc(int iommufd) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, iommu_ioas_alloc, "size");
            Posix.ioctl(iommufd, IOMMU_IOAS_ALLOC, s, "IOMMU_IOAS_ALLOC");
            return s.get(JAVA_INT, off(iommu_ioas_alloc, "out_ioas_id"));
        }
    }

    public static void attachIommufdPt(int device, int ptId) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, vfio_device_attach_iommufd_pt, "argsz");
            s.set(JAVA_INT, off(vfio_device_attach_iommufd_pt, "pt_id"), ptId);
            Posix.ioctl(device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, s, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
        }
    }

    /** {@code IOMMU_DESTROY}: frees an iommufd object (an IOAS) by id. */
    public static void iommuDestroy(int iommufd, int id) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, iommu_destroy, "size");
            s.set(JAVA_INT, off(iommu_destroy, "id"), id);
            Posix.ioctl(iommufd, IOMMU_DESTROY, s, "IOMMU_DESTROY");
        }
    }

    /**
     * {@code IOMMU_IOAS_MAP_FILE}, readable and writeable: maps {@code length} bytes of {@code fd} from
     * {@code start} into an IOAS, at {@code iova} when {@code fixedIova}, else where the kernel chooses. Returns
     * the IOVA.
     */
    public static long ioasMapFile(int iommufd, int ioas, int fd, long start, long length, long iova, boolean fixedIova)
            throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, iommu_ioas_map_file, "size");
            int flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | (fixedIova ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
            s.set(JAVA_INT, off(iommu_ioas_map_file, "flags"), flags);
            s.set(JAVA_INT, off(iommu_ioas_map_file, "ioas_id"), ioas);
            s.set(JAVA_INT, off(iommu_ioas_map_file, "fd"), fd);
            s.set(JAVA_LONG, off(iommu_ioas_map_file, "start"), start);
            s.set(JAVA_LONG, off(iommu_ioas_map_file, "length"), length);
            s.set(JAVA_LONG, off(iommu_ioas_map_file, "iova"), fixedIova ? iova : 0);
            Posix.ioctl(iommufd, IOMMU_IOAS_MAP_FILE, s, "IOMMU_IOAS_MAP_FILE");
            return s.get(JAVA_LONG, off(iommu_ioas_map_file, "iova"));
        }
    }

    /** {@code IOMMU_IOAS_UNMAP} of {@code [iova, iova + length)}; returns how many bytes the kernel unmapped. */
    public static long ioasUnmap(int iommufd, int ioas, long iova, long length) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = withArgsz(a, iommu_ioas_unmap, "size");
            s.set(JAVA_INT, off(iommu_ioas_unmap, "ioas_id"), ioas);
            s.set(JAVA_LONG, off(iommu_ioas_unmap, "iova"), iova);
            s.set(JAVA_LONG, off(iommu_ioas_unmap, "length"), length);
            Posix.ioctl(iommufd, IOMMU_IOAS_UNMAP, s, "IOMMU_IOAS_UNMAP");
            return s.get(JAVA_LONG, off(iommu_ioas_unmap, "length"));
        }
    }

    // ---- region access (pread/pwrite at the region's offset in the device fd) ---------------------------

    public static byte[] pread(int device, long offset, int count) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(count);
            long n = Posix.pread(device, buf, count, offset);
            if (n != count) throw new PosixException("pread (short: " + n + " of " + count + ")", Errno.EIO.value);
            return buf.toArray(JAVA_BYTE);
        }
    }

    public static void pwrite(int device, long offset, byte[] data) throws PosixException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocateFrom(JAVA_BYTE, data);
            long n = Posix.pwrite(device, buf, data.length, offset);
            if (n != data.length) throw new PosixException("pwrite (short: " + n + " of " + data.length + ")", Errno.EIO.value);
        }
    }
}

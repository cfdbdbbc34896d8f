package org.vfioexport.ffm.uapi;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.vfioexport.ffm.uapi.Ioctl.IO;

/**
 * {@code include/uapi/linux/iommufd.h}, the parts the VFIO cdev path and the iommufd importer need, in header
 * order. C names, as in {@link Vfio}.
 */
public final class Iommufd {
    private Iommufd() {}

    public static final int IOMMUFD_TYPE = ';';

    // enum { IOMMUFD_CMD_BASE = 0x80, ... }
    public static final int IOMMUFD_CMD_BASE = 0x80;
    public static final int IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
    public static final int IOMMUFD_CMD_IOAS_ALLOC = 0x81;
    public static final int IOMMUFD_CMD_IOAS_UNMAP = 0x86;
    public static final int IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;

    /** {@code struct iommu_destroy} */
    public static final StructLayout iommu_destroy = MemoryLayout.structLayout(
            JAVA_INT.withName("size"),
            JAVA_INT.withName("id")
    ).withName("iommu_destroy");
    public static final int IOMMU_DESTROY = IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);

    /** {@code struct iommu_ioas_alloc}: flags must be 0; the kernel fills out_ioas_id. */
    public static final StructLayout iommu_ioas_alloc = MemoryLayout.structLayout(
            JAVA_INT.withName("size"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("out_ioas_id")
    ).withName("iommu_ioas_alloc");
    public static final int IOMMU_IOAS_ALLOC = IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);

    // enum iommufd_ioas_map_flags
    public static final int IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
    public static final int IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
    public static final int IOMMU_IOAS_MAP_READABLE = 1 << 2;

    /**
     * {@code struct iommu_ioas_map_file}: maps {@code length} bytes of a file from {@code start} (a memfd, or since
     * 6.19 a VFIO dma-buf of one range) at {@code iova}, fixed or chosen by the kernel (written back).
     */
    public static final StructLayout iommu_ioas_map_file = MemoryLayout.structLayout(
            JAVA_INT.withName("size"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("ioas_id"),
            JAVA_INT.withName("fd"),
            JAVA_LONG.withName("start"),
            JAVA_LONG.withName("length"),
            JAVA_LONG.withName("iova")
    ).withName("iommu_ioas_map_file");
    public static final int IOMMU_IOAS_MAP_FILE = IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE);

    /** {@code struct iommu_ioas_unmap}: the kernel writes back how many bytes it unmapped in {@code length}. */
    public static final StructLayout iommu_ioas_unmap = MemoryLayout.structLayout(
            JAVA_INT.withName("size"),
            JAVA_INT.withName("ioas_id"),
            JAVA_LONG.withName("iova"),
            JAVA_LONG.withName("length")
    ).withName("iommu_ioas_unmap");
    public static final int IOMMU_IOAS_UNMAP = IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);
}

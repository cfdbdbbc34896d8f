package org.vfioexport.ffm.uapi;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.vfioexport.ffm.uapi.Ioctl.IO;

/**
 * {@code include/uapi/linux/iommufd.h}, the parts the VFIO cdev path needs, in header order. C names, as in
 * {@link Vfio}.
 */
public final class Iommufd {
    private Iommufd() {}

    public static final int IOMMUFD_TYPE = ';';

    // enum { IOMMUFD_CMD_BASE = 0x80, ... }
    public static final int IOMMUFD_CMD_BASE = 0x80;
    public static final int IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
    public static final int IOMMUFD_CMD_IOAS_ALLOC = 0x81;

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
}

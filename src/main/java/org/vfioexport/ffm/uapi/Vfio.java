package org.vfioexport.ffm.uapi;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.vfioexport.ffm.uapi.Ioctl.IO;

/**
 * {@code include/uapi/linux/vfio.h}, the parts this project uses, in header order. Names are the C names:
 * constants are the macros, layouts are named after their struct and members after its fields, so the layout
 * test can compare every one of them with the real header. x86-64 / aarch64 (LP64, little-endian).
 */
public final class Vfio {
    private Vfio() {}

    public static final int VFIO_API_VERSION = 0;

    // Extensions (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU)
    public static final int VFIO_TYPE1_IOMMU = 1;
    public static final int VFIO_TYPE1v2_IOMMU = 3;
    /** The unsafe no-IOMMU mode: only with CONFIG_VFIO_NOIOMMU and vfio's enable_unsafe_noiommu_mode=1. */
    public static final int VFIO_NOIOMMU_IOMMU = 8;

    public static final int VFIO_TYPE = ';';
    public static final int VFIO_BASE = 100;

    // ---- container fd (/dev/vfio/vfio) -------------------------------------------------------------------
    public static final int VFIO_GET_API_VERSION = IO(VFIO_TYPE, VFIO_BASE + 0);
    public static final int VFIO_CHECK_EXTENSION = IO(VFIO_TYPE, VFIO_BASE + 1);
    public static final int VFIO_SET_IOMMU = IO(VFIO_TYPE, VFIO_BASE + 2);

    // ---- group fd (/dev/vfio/<group>) --------------------------------------------------------------------
    /** {@code struct vfio_group_status} */
    public static final StructLayout vfio_group_status = MemoryLayout.structLayout(
            JAVA_INT.withName("argsz"),
            JAVA_INT.withName("flags")
    ).withName("vfio_group_status");
    public static final int VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
    public static final int VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
    public static final int VFIO_GROUP_GET_STATUS = IO(VFIO_TYPE, VFIO_BASE + 3);
    /** Argument: a pointer to the container fd (int). */
    public static final int VFIO_GROUP_SET_CONTAINER = IO(VFIO_TYPE, VFIO_BASE + 4);
    public static final int VFIO_GROUP_UNSET_CONTAINER = IO(VFIO_TYPE, VFIO_BASE + 5);
    /** Argument: the device name, a NUL-terminated string such as "0000:00:07.0". Returns the device fd. */
    public static final int VFIO_GROUP_GET_DEVICE_FD = IO(VFIO_TYPE, VFIO_BASE + 6);

    // ---- device fd ---------------------------------------------------------------------------------------
    /** {@code struct vfio_device_info} */
    public static final StructLayout vfio_device_info = MemoryLayout.structLayout(
            JAVA_INT.withName("argsz"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("num_regions"),
            JAVA_INT.withName("num_irqs"),
            JAVA_INT.withName("cap_offset"),
            JAVA_INT.withName("pad")
    ).withName("vfio_device_info");
    public static final int VFIO_DEVICE_FLAGS_RESET = 1 << 0;
    public static final int VFIO_DEVICE_FLAGS_PCI = 1 << 1;
    public static final int VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
    public static final int VFIO_DEVICE_GET_INFO = IO(VFIO_TYPE, VFIO_BASE + 7);

    /** {@code struct vfio_region_info} */
    public static final StructLayout vfio_region_info = MemoryLayout.structLayout(
            JAVA_INT.withName("argsz"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("index"),
            JAVA_INT.withName("cap_offset"),
            JAVA_LONG.withName("size"),
            JAVA_LONG.withName("offset")
    ).withName("vfio_region_info");
    public static final int VFIO_REGION_INFO_FLAG_READ = 1 << 0;
    public static final int VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
    public static final int VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
    public static final int VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
    public static final int VFIO_DEVICE_GET_REGION_INFO = IO(VFIO_TYPE, VFIO_BASE + 8);

    public static final int VFIO_DEVICE_RESET = IO(VFIO_TYPE, VFIO_BASE + 11);

    // vfio-pci region indexes (enum in the header)
    public static final int VFIO_PCI_BAR0_REGION_INDEX = 0;
    public static final int VFIO_PCI_BAR5_REGION_INDEX = 5;
    public static final int VFIO_PCI_ROM_REGION_INDEX = 6;
    public static final int VFIO_PCI_CONFIG_REGION_INDEX = 7;
    public static final int VFIO_PCI_VGA_REGION_INDEX = 8;
    public static final int VFIO_PCI_NUM_REGIONS = 9;

    public static final int VFIO_DEVICE_PCI_HOT_RESET = IO(VFIO_TYPE, VFIO_BASE + 13);

    /** {@code struct vfio_device_feature}; {@code data[]} follows the 8-byte header. */
    public static final StructLayout vfio_device_feature = MemoryLayout.structLayout(
            JAVA_INT.withName("argsz"),
            JAVA_INT.withName("flags"),
            MemoryLayout.sequenceLayout(0, JAVA_BYTE).withName("data")
    ).withName("vfio_device_feature");
    public static final int VFIO_DEVICE_FEATURE_MASK = 0xffff;
    public static final int VFIO_DEVICE_FEATURE_GET = 1 << 16;
    public static final int VFIO_DEVICE_FEATURE_SET = 1 << 17;
    public static final int VFIO_DEVICE_FEATURE_PROBE = 1 << 18;
    public static final int VFIO_DEVICE_FEATURE = IO(VFIO_TYPE, VFIO_BASE + 17);

    // ---- device cdev (/dev/vfio/devices/vfioN) with iommufd ----------------------------------------------
    /** {@code struct vfio_device_bind_iommufd} */
    public static final StructLayout vfio_device_bind_iommufd = MemoryLayout.structLayout(
            JAVA_INT.withName("argsz"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("iommufd"),
            JAVA_INT.withName("out_devid"),
            JAVA_LONG.withName("token_uuid_ptr")
    ).withName("vfio_device_bind_iommufd");
    public static final int VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
    public static final int VFIO_DEVICE_BIND_IOMMUFD = IO(VFIO_TYPE, VFIO_BASE + 18);

    /** {@code struct vfio_device_attach_iommufd_pt} */
    public static final StructLayout vfio_device_attach_iommufd_pt = MemoryLayout.structLayout(
            JAVA_INT.withName("argsz"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("pt_id"),
            JAVA_INT.withName("pasid")
    ).withName("vfio_device_attach_iommufd_pt");
    public static final int VFIO_DEVICE_ATTACH_PASID = 1 << 0;
    public static final int VFIO_DEVICE_ATTACH_IOMMUFD_PT = IO(VFIO_TYPE, VFIO_BASE + 19);
    public static final int VFIO_DEVICE_DETACH_IOMMUFD_PT = IO(VFIO_TYPE, VFIO_BASE + 20);

    // ---- VFIO_DEVICE_FEATURE_DMA_BUF (6.19+) -------------------------------------------------------------
    public static final int VFIO_DEVICE_FEATURE_DMA_BUF = 11;

    /** {@code struct vfio_region_dma_range}: offset from the BAR start and length. */
    public static final StructLayout vfio_region_dma_range = MemoryLayout.structLayout(
            JAVA_LONG.withName("offset"),
            JAVA_LONG.withName("length")
    ).withName("vfio_region_dma_range");

    /** {@code struct vfio_device_feature_dma_buf}, placed at {@code vfio_device_feature.data}. */
    public static final StructLayout vfio_device_feature_dma_buf = MemoryLayout.structLayout(
            JAVA_INT.withName("region_index"),
            JAVA_INT.withName("open_flags"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("nr_ranges"),
            MemoryLayout.sequenceLayout(0, vfio_region_dma_range).withName("dma_ranges")
    ).withName("vfio_device_feature_dma_buf");
}

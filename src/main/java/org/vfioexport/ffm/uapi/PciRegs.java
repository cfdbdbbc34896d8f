package org.vfioexport.ffm.uapi;

/**
 * {@code include/uapi/linux/pci_regs.h}, the parts of PCI config space this project reads and writes through the
 * VFIO config region. C names, as in {@link Vfio}.
 */
public final class PciRegs {
    private PciRegs() {}

    /** Size of a PCI Express function's config space. */
    public static final int PCI_CFG_SPACE_EXP_SIZE = 4096;

    /** 16 bits. */
    public static final int PCI_COMMAND = 0x04;
    /** Enable response in memory space: clearing it revokes a BAR's dma-bufs. */
    public static final int PCI_COMMAND_MEMORY = 0x2;
    /** Enable bus mastering: a function without it cannot DMA. */
    public static final int PCI_COMMAND_MASTER = 0x4;

    /** 32 bits; BARs 1-5 follow at 4-byte steps. */
    public static final int PCI_BASE_ADDRESS_0 = 0x10;
    public static final int PCI_BASE_ADDRESS_SPACE_IO = 0x01;
    public static final int PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
}

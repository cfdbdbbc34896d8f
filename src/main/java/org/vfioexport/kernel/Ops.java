package org.vfioexport.kernel;

/** Operation names carried by {@link KernelException}: the uAPI call each backend performs. */
public final class Ops {
    private Ops() {}

    public static final String OPEN = "open";
    public static final String GET_INFO = "VFIO_DEVICE_GET_INFO";
    public static final String GET_REGION_INFO = "VFIO_DEVICE_GET_REGION_INFO";
    public static final String FEATURE_DMA_BUF = "VFIO_DEVICE_FEATURE_DMA_BUF";
    public static final String RESET = "VFIO_DEVICE_RESET";
    public static final String SET_MEMORY = "PCI_COMMAND";
    public static final String CLOSE = "close";
}

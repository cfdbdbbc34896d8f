package org.vfioexport.kernel;

import java.util.List;

/**
 * The kernel SPI: what the service needs from Linux VFIO, implemented by the simulated kernel and the real one.
 * A backend says whether it can run here and, if not, why ({@link #unavailabilityCause()}), as Vert.x's native
 * transports do.
 */
public interface VfioKernel extends AutoCloseable {
    /** {@code sim} or {@code linux}. */
    String name();

    boolean isAvailable();

    /** Why {@link #isAvailable()} is false, in words a person can act on; null when available. */
    String unavailabilityCause();

    /** The devices this backend can open (PCI addresses). */
    List<String> deviceIds();

    /**
     * Whether a client can drive an importer of its exports here ({@link DmaBuf#attachImporter}): the simulated
     * kernel's, or iommufd on Linux.
     */
    default boolean hasImporters() {
        return false;
    }

    /** Opens a device (the VFIO device fd). */
    VfioDevice open(String deviceId) throws KernelException;

    @Override
    default void close() {}
}

package org.vfioexport.kernel.linux;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The iommufd importers of one device's dma-bufs, told of the device's revocations and restores. iommufd itself
 * says nothing to userspace when the exporter revokes (the mapping silently stops translating) or restores (it
 * stays dead): the device object, which makes every call that revokes or restores, tells them here.
 */
final class DeviceImporters {
    private final List<IommufdImporter> importers = new CopyOnWriteArrayList<>();

    void add(IommufdImporter i) {
        importers.add(i);
    }

    void remove(IommufdImporter i) {
        importers.remove(i);
    }

    /** A reset, PCI_COMMAND.MEMORY cleared, or the device's close: every dma-buf of the device was revoked. */
    void revoked(boolean forGood) {
        for (IommufdImporter i : importers) i.revoked(forGood);
    }

    /** The dma-bufs may be usable again (memory decoding on after a reset, or set on): map them again. */
    void restored() {
        for (IommufdImporter i : importers) i.restored();
    }

    int size() {
        return importers.size();
    }
}

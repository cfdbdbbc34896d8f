package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the Linux backend's iommufd importer promises, checked on the fake {@code /dev/iommu} in the build
 * ({@code FakeIommufdImporterContractTest}) and on the lab kernel in the VM ({@code LinuxIommufdImporterContractTest}),
 * where "a device reaches the buffer" is QEMU's edu reading it by DMA through the importer's IOAS. The NVMe of
 * the lab exports pages of its CMB (BAR2) and has FLR.
 */
abstract class IommufdImporterContract {
    static final String NVME = "0000:00:07.0";
    static final int CMB = 2;
    static final long PAGE = 4096;

    protected LinuxKernel kernel;
    protected VfioDevice nvme;
    private int fdsBefore;

    /** A backend with iommufd over the lab's devices. */
    protected abstract LinuxKernel createKernel() throws Exception;

    /**
     * Whether a device attached to the importer's IOAS reaches the buffer at the importer's IOVA now. The buffer is
     * the CMB page at {@code cmbOffset}; on a real kernel the check may write a pattern there first.
     */
    protected abstract boolean reachable(IommufdImporter importer, long cmbOffset) throws Exception;

    /** The fds the kernel side holds for this test (the fake's table, or this process's fd directory). */
    protected abstract int openFds() throws Exception;

    @BeforeEach
    void open() throws Exception {
        fdsBefore = openFds();
        kernel = createKernel();
        nvme = kernel.open(NVME);
        nvme.setMemoryEnabled(true);
    }

    @AfterEach
    void close() throws Exception {
        if (kernel == null) return; // skipped: this kernel has no iommufd
        if (nvme != null) nvme.close();
        kernel.close();
        assertEquals(fdsBefore, openFds(), "the device, the importers' IOASes, their dups and the iommufd are all gone");
    }

    private DmaBuf cmb(long... pages) throws KernelException {
        List<DmaRange> ranges = new ArrayList<>();
        for (long p : pages) ranges.add(new DmaRange(p * PAGE, PAGE));
        return nvme.exportDmaBuf(DmaBufRequest.get(CMB, ranges, DmaBufRequest.DEFAULT_OPEN_FLAGS));
    }

    @Test
    void mapsAtAFixedIovaAndMapsAgainAfterAReset() throws Exception {
        assertTrue(kernel.hasImporters());
        List<String> calls = new ArrayList<>();
        try (DmaBuf b = cmb(0);
             Importer i = b.attachImporter(x -> calls.add("invalidated " + x.state()), x -> calls.add("remapped " + x.state()))) {
            IommufdImporter imp = (IommufdImporter) i;
            assertEquals(Importer.State.UNMAPPED, i.state());
            assertEquals(-1, i.iova());
            assertFalse(reachable(imp, 0), "nothing mapped yet");
            i.map();
            assertEquals(Importer.State.MAPPED, i.state());
            assertEquals(IommufdImporter.IOVA, i.iova());
            assertTrue(reachable(imp, 0), "mapped: a device in the IOAS reaches the BAR");
            assertEquals(Errno.EEXIST.value, assertThrows(KernelException.class, i::map).errno(),
                    "the kernel's answer to a second map at that IOVA");

            nvme.reset();
            assertEquals(List.of("invalidated REVOKED", "remapped MAPPED"), calls,
                    "a reset revokes, then restores (memory decoding stays on): told in that order");
            assertTrue(reachable(imp, 0), "mapped again at the same IOVA after the reset");
            assertEquals(1, i.invalidations());
            assertEquals(1, i.remaps());
        }
    }

    @Test
    void memoryOffRevokesUntilMemoryIsOnAgainAndMapIsEnodevMeanwhile() throws Exception {
        try (DmaBuf b = cmb(1); Importer i = b.attachImporter(x -> {}, x -> {})) {
            IommufdImporter imp = (IommufdImporter) i;
            i.map();
            assertTrue(reachable(imp, PAGE));
            nvme.setMemoryEnabled(false);
            assertEquals(Importer.State.REVOKED, i.state());
            assertFalse(reachable(imp, PAGE), "memory decoding off: the kernel zapped the mapping");
            assertEquals(1, i.mapped(), "the importer still wants its mapping");
            i.unmap();
            assertEquals(Errno.ENODEV.value, assertThrows(KernelException.class, i::map).errno(),
                    "IOMMU_IOAS_MAP_FILE of a revoked dma-buf");
            nvme.setMemoryEnabled(true);
            assertEquals(Importer.State.UNMAPPED, i.state(), "unmapped by its owner: nothing to restore");
            assertFalse(reachable(imp, PAGE));
            i.map();
            assertTrue(reachable(imp, PAGE));
            nvme.setMemoryEnabled(false);
            nvme.setMemoryEnabled(true);
            assertEquals(Importer.State.MAPPED, i.state());
            assertTrue(reachable(imp, PAGE), "memory on again: mapped again by the backend");
            assertEquals(1, i.remaps());
            assertEquals(2, i.invalidations());
        }
    }

    @Test
    void aResetWithMemoryOffLeavesTheMappingRevokedUntilMemoryIsOn() throws Exception {
        try (DmaBuf b = cmb(3); Importer i = b.attachImporter(x -> {}, x -> {})) {
            IommufdImporter imp = (IommufdImporter) i;
            i.map();
            nvme.setMemoryEnabled(false);
            nvme.reset();
            assertEquals(Importer.State.REVOKED, i.state(), "the reset restores nothing while memory is off");
            assertEquals(0, i.remaps(), "the remap was refused (ENODEV) and waits");
            nvme.setMemoryEnabled(true);
            assertEquals(Importer.State.MAPPED, i.state());
            assertTrue(reachable(imp, 3 * PAGE));
            assertEquals(1, i.remaps());
        }
    }

    @Test
    void theImporterHoldsTheBufferAfterTheExporterClosedItsFdAndTheDeviceCloseRevokesForGood() throws Exception {
        DmaBuf b = cmb(2);
        Importer i = b.attachImporter(x -> {}, x -> {});
        IommufdImporter imp = (IommufdImporter) i;
        i.map();
        b.close();
        assertTrue(reachable(imp, 2 * PAGE), "the importer holds its own reference to the buffer");
        nvme.close();
        nvme = null;
        assertEquals(Importer.State.REVOKED, i.state(), "the device's close revokes its dma-bufs for good");
        assertFalse(reachable(imp, 2 * PAGE));
        i.unmap();
        assertEquals(Errno.ENODEV.value, assertThrows(KernelException.class, i::map).errno());
        i.close();
        i.close(); // idempotent
        assertEquals(Importer.State.DETACHED, i.state());
    }

    @Test
    void aBufferOfTwoRangesCannotBeImported() throws Exception {
        try (DmaBuf b = cmb(0, 2); Importer i = b.attachImporter(x -> {}, x -> {})) {
            assertEquals(Errno.EOPNOTSUPP.value, assertThrows(KernelException.class, i::map).errno(),
                    "iommufd maps a dma-buf of one range only");
            assertEquals(Importer.State.UNMAPPED, i.state());
        }
    }
}

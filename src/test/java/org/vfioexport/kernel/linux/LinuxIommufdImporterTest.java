package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The iommufd importer of the Linux backend over {@link FakeVfio}, which models what 7.2 does (iommufd-notes in
 * the lab): a revoke zaps the mapping and says nothing, a restore maps nothing back, MAP_FILE of a revoked buffer
 * is ENODEV. The importer must learn both from the device's own calls and map the buffer again at the same IOVA.
 */
class LinuxIommufdImporterTest {
    static final String NVME = "0000:00:07.0";
    static final long PAGE = 4096;

    @TempDir
    Path root;

    private record Setup(FakeVfio fake, LinuxKernel kernel, VfioDevice nvme) {}

    private Setup open(boolean iommufd) throws KernelException {
        FakeVfio fake = new FakeVfio(root, iommufd, false, FakeVfio.lab());
        LinuxKernel k = new LinuxKernel(fake, fake.dev(), fake.sysBusPci(), null);
        return new Setup(fake, k, k.open(NVME));
    }

    private static DmaBuf cmb(VfioDevice d, long... pages) throws KernelException {
        List<DmaRange> ranges = new ArrayList<>();
        for (long p : pages) ranges.add(new DmaRange(p * PAGE, PAGE));
        return d.exportDmaBuf(DmaBufRequest.get(2, ranges, DmaBufRequest.DEFAULT_OPEN_FLAGS));
    }

    /** What a device attached to the importer's IOAS would see at the importer's IOVA. */
    private static boolean reachable(FakeVfio fake, Importer i) {
        IommufdImporter imp = (IommufdImporter) i;
        return fake.translates(imp.iommufd(), imp.ioas(), IommufdImporter.IOVA);
    }

    @Test
    void mapsTheBufferAtAFixedIovaAndMapsItAgainAfterAReset() throws Exception {
        Setup s = open(true);
        assertTrue(s.kernel().hasImporters());
        List<String> calls = new ArrayList<>();
        try (DmaBuf b = cmb(s.nvme(), 0);
             Importer i = b.attachImporter(x -> calls.add("invalidated " + x.state()), x -> calls.add("remapped " + x.state()))) {
            assertEquals(Importer.State.UNMAPPED, i.state());
            assertTrue(i.remapsOnRestore());
            i.map();
            assertEquals(Importer.State.MAPPED, i.state());
            assertEquals(IommufdImporter.IOVA, i.iova());
            assertTrue(reachable(s.fake(), i), "mapped: a device in the IOAS reaches the BAR");
            KernelException twice = assertThrows(KernelException.class, i::map);
            assertEquals(Errno.EEXIST.value, twice.errno(), "the kernel's answer to a second map at that IOVA");

            s.nvme().reset();
            assertEquals(List.of("invalidated REVOKED", "remapped MAPPED"), calls,
                    "a reset revokes then restores (memory decoding stays on): told in that order");
            assertTrue(reachable(s.fake(), i), "remapped at the same IOVA after the reset");
            assertEquals(1, i.invalidations());
            assertEquals(1, i.remaps());
            assertEquals(1, s.fake().areas(((IommufdImporter) i).iommufd(), ((IommufdImporter) i).ioas()),
                    "the dead area was unmapped before the new map, not left beside it");
        }
        s.nvme().close();
        s.kernel().close();
        assertEquals(Map.of(), s.fake().openFds(), "the importer's IOAS, its dup of the buffer and the iommufd are gone");
    }

    @Test
    void memoryOffRevokesUntilMemoryIsOnAgainAndMapIsEnodevMeanwhile() throws Exception {
        Setup s = open(true);
        try (DmaBuf b = cmb(s.nvme(), 1); Importer i = b.attachImporter(x -> {}, x -> {})) {
            i.map();
            s.nvme().setMemoryEnabled(false);
            assertEquals(Importer.State.REVOKED, i.state());
            assertFalse(reachable(s.fake(), i), "memory decoding off: the kernel zapped the mapping");
            assertEquals(1, i.mapped(), "the importer still wants its mapping");
            // a reset with memory off revokes and does not restore: the remap is refused (ENODEV) and waits
            s.nvme().reset();
            assertEquals(Importer.State.REVOKED, i.state());
            assertEquals(0, i.remaps());
            i.unmap();
            KernelException revoked = assertThrows(KernelException.class, i::map);
            assertEquals(Errno.ENODEV.value, revoked.errno(), "MAP_FILE of a revoked dma-buf");
            s.nvme().setMemoryEnabled(true);
            assertEquals(Importer.State.UNMAPPED, i.state(), "unmapped by its owner: nothing to restore");
            i.map();
            assertTrue(reachable(s.fake(), i));
            s.nvme().setMemoryEnabled(false);
            s.nvme().setMemoryEnabled(true);
            assertEquals(Importer.State.MAPPED, i.state());
            assertTrue(reachable(s.fake(), i), "memory on again: mapped again by the backend");
            assertEquals(1, i.remaps());
            assertEquals(3, i.invalidations(), "memory off, the reset, memory off");
        }
        s.nvme().close();
        s.kernel().close();
        assertEquals(Map.of(), s.fake().openFds());
    }

    @Test
    void theImporterKeepsTheBufferAfterTheExporterClosedItsFdAndTheDeviceCloseRevokesForGood() throws Exception {
        Setup s = open(true);
        DmaBuf b = cmb(s.nvme(), 2);
        Importer i = b.attachImporter(x -> {}, x -> {});
        i.map();
        b.close();
        assertTrue(reachable(s.fake(), i), "the importer holds its own reference to the buffer");
        s.nvme().close();
        assertEquals(Importer.State.REVOKED, i.state(), "the device's close revokes its dma-bufs for good");
        assertFalse(reachable(s.fake(), i));
        i.unmap();
        assertEquals(Errno.ENODEV.value, assertThrows(KernelException.class, i::map).errno());
        i.close();
        i.close(); // idempotent
        assertEquals(Importer.State.DETACHED, i.state());
        s.kernel().close();
        assertEquals(Map.of(), s.fake().openFds());
    }

    @Test
    void aBufferOfTwoRangesCannotBeImported() throws Exception {
        Setup s = open(true);
        try (DmaBuf b = cmb(s.nvme(), 0, 2); Importer i = b.attachImporter(x -> {}, x -> {})) {
            assertEquals(Errno.EOPNOTSUPP.value, assertThrows(KernelException.class, i::map).errno(),
                    "iommufd maps a dma-buf of one range only");
            assertEquals(Importer.State.UNMAPPED, i.state());
        }
        s.nvme().close();
        s.kernel().close();
        assertEquals(Map.of(), s.fake().openFds());
    }

    @Test
    void aKernelWithoutIommufdHasNoImporter() throws Exception {
        Setup s = open(false);
        assertFalse(s.kernel().hasImporters());
        try (DmaBuf b = cmb(s.nvme(), 0)) {
            KernelException e = assertThrows(KernelException.class, () -> b.attachImporter(x -> {}, x -> {}));
            assertEquals(Errno.EOPNOTSUPP.value, e.errno());
            assertTrue(e.getMessage().contains("CONFIG_IOMMUFD"), e.getMessage());
        }
        s.nvme().close();
        assertEquals(Map.of(), s.fake().openFds());
    }

    /** Every step of attach, map, remap and detach failing in turn leaves no fd and no IOAS behind. */
    @Test
    void aFailureAtAnyStepLeavesNothingBehind() throws Exception {
        for (int n = 1; ; n++) {
            Path dir = root.resolve("run" + n);
            java.nio.file.Files.createDirectories(dir);
            FakeVfio fake = new FakeVfio(dir, true, false, FakeVfio.lab());
            LinuxKernel k = new LinuxKernel(fake, fake.dev(), fake.sysBusPci(), null);
            VfioDevice d = k.open(NVME);
            DmaBuf b = cmb(d, 0);
            fake.failNth(n, Errno.ENOMEM.value);
            Importer i = null;
            try {
                i = b.attachImporter(x -> {}, x -> {});
                i.map();
                d.reset();
                i.unmap();
                i.map();
            } catch (KernelException expected) {
                // the failed step's errno; what matters is what is left below
            }
            boolean failed = fake.failureHappened();
            fake.noFailure();
            if (i != null) i.close();
            b.close();
            d.close();
            k.close();
            assertEquals(Map.of(), fake.openFds(), "after a failure at call " + n + " (" + fake.failedCall() + ")");
            if (!failed) {
                assertTrue(n > 5, "the sweep reached the end after only " + n + " calls");
                return;
            }
        }
    }
}

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
 * The iommufd importer of the Linux backend over {@link FakeVfio}, which models what 7.2 does: a revoke zaps the
 * mapping and says nothing, a restore maps nothing back, MAP_FILE of a revoked buffer is ENODEV. What the lab
 * kernel checks too is in {@link IommufdImporterContract}; here is what only the fake can show: the IOVA areas,
 * a kernel without iommufd, and a failure at every step.
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

    /** What only the fake can show: the remap replaces the dead IOVA area, it does not add one beside it. */
    @Test
    void theRemapUnmapsTheDeadAreaFirst() throws Exception {
        Setup s = open(true);
        try (DmaBuf b = cmb(s.nvme(), 0); Importer i = b.attachImporter(x -> {}, x -> {})) {
            IommufdImporter imp = (IommufdImporter) i;
            i.map();
            s.nvme().reset();
            s.nvme().setMemoryEnabled(false);
            s.nvme().setMemoryEnabled(true);
            assertEquals(2, i.remaps());
            assertTrue(reachable(s.fake(), i));
            assertEquals(1, s.fake().areas(imp.iommufd(), imp.ioas()), "one area: each dead one was unmapped first");
            assertEquals(2, s.fake().calls("IOMMU_IOAS_UNMAP"), "one UNMAP of the dead area per remap");
        }
        s.nvme().close();
        s.kernel().close();
        assertEquals(Map.of(), s.fake().openFds());
    }

    /** A reset refused before the kernel touched the buffers (no reset method: EINVAL) tells the importers nothing. */
    @Test
    void aRefusedResetIsNoRevoke() throws Exception {
        Setup s = open(true);
        VfioDevice edu = s.kernel().open("0000:00:06.0");
        try (DmaBuf b = edu.exportDmaBuf(DmaBufRequest.get(0, 0, PAGE)); Importer i = b.attachImporter(x -> {}, x -> {})) {
            IommufdImporter imp = (IommufdImporter) i;
            i.map();
            assertEquals(Errno.EINVAL.value, assertThrows(KernelException.class, edu::reset).errno());
            assertEquals(Importer.State.MAPPED, i.state());
            assertEquals(0, i.invalidations(), "no revoke happened");
            assertEquals(0, s.fake().calls("IOMMU_IOAS_UNMAP"), "the live mapping was left alone");
            assertTrue(s.fake().translates(imp.iommufd(), imp.ioas(), IommufdImporter.IOVA));
        }
        edu.close();
        s.nvme().close();
        s.kernel().close();
        assertEquals(Map.of(), s.fake().openFds());
    }

    /** An importer that outlives the backend's close makes no call on the closed iommufd's number. */
    @Test
    void anImporterClosedAfterTheBackendTouchesNoClosedFd() throws Exception {
        Setup s = open(true);
        DmaBuf b = cmb(s.nvme(), 0);
        Importer i = b.attachImporter(x -> {}, x -> {});
        i.map();
        s.kernel().close();
        int unmaps = s.fake().calls("IOMMU_IOAS_UNMAP"), destroys = s.fake().calls("IOMMU_DESTROY");
        i.close();
        assertEquals(unmaps, s.fake().calls("IOMMU_IOAS_UNMAP"), "closing the iommufd removed the mappings already");
        assertEquals(destroys, s.fake().calls("IOMMU_DESTROY"));
        b.close();
        s.nvme().close();
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

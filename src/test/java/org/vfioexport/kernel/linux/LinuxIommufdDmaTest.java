package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.Importer;
import org.vfioexport.kernel.VfioDevice;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Revocation seen from the importer's side with real DMA, on the lab kernel (iommufd and the VFIO cdev): the
 * backend exports a page of the NVMe controller memory buffer, its iommufd importer maps it into an IO address
 * space, and QEMU's edu device, attached to that space, DMA-reads it through the emulated IOMMU. The read returns
 * the CMB's contents while the export is live, fails while it is revoked (memory decoding off), and works again
 * after the restore, once the backend mapped it again, and after a reset, which revokes and restores in one call.
 *
 * <p>On Debian's kernel (no iommufd) it is skipped; the lab kernel's run ({@code vfioexport.vm.kernel=lab}) makes
 * a missing {@code /dev/iommu} a failure.
 */
@Tag("vm")
class LinuxIommufdDmaTest {
    static final String NVME = "0000:00:07.0", EDU = "0000:00:06.0";
    static final int CMB = 2;
    static final long BARE_IOVA = 0x200000;

    private static byte[] pattern(int tag) {
        byte[] p = new byte[EduDmaEngine.LEN];
        for (int i = 0; i < p.length; i += 4) {
            int v = tag | i / 4;
            p[i] = (byte) v;
            p[i + 1] = (byte) (v >>> 8);
            p[i + 2] = (byte) (v >>> 16);
            p[i + 3] = (byte) (v >>> 24);
        }
        return p;
    }

    @Test
    void eduReadsTheExportedCmbThroughTheImporterExceptWhileRevoked(TestReporter report) throws Exception {
        boolean lab = "lab".equals(System.getProperty("vfioexport.vm.kernel"));
        if (!lab) Assumptions.assumeTrue(Files.exists(Path.of("/dev/iommu")), "this kernel has no iommufd");
        assertTrue(Files.exists(Path.of("/dev/iommu")), "the lab kernel must have /dev/iommu (CONFIG_IOMMUFD)");
        List<String> events = new ArrayList<>();
        try (LinuxKernel kernel = new LinuxKernel(List.of(NVME));
             VfioDevice nvme = kernel.open(NVME)) {
            assertTrue(kernel.hasImporters());
            LinuxVfioDevice d = (LinuxVfioDevice) nvme;
            report.publishEntry("nvme opened through", d.openedThrough());
            nvme.setMemoryEnabled(true);
            try (DmaBuf buf = nvme.exportDmaBuf(DmaBufRequest.get(CMB, 0, 4096));
                 Importer importer = buf.attachImporter(i -> events.add("invalidated"), i -> events.add("remapped"))) {
                IommufdImporter imp = (IommufdImporter) importer;
                importer.map();
                try (EduDmaEngine edu = new EduDmaEngine(EDU, imp.iommufd(), imp.ioas())) {
                    assertEquals(0x010000ed, edu.identification(), "edu's identification register");

                    // beside the importer, a bare MAP_FILE of the same buffer that nobody remaps: what the kernel
                    // alone does after a restore
                    FfmVfioSyscalls.INSTANCE.ioasMapFile(imp.iommufd(), imp.ioas(), buf.fd(), 0, 4096, BARE_IOVA, true);

                    byte[] p1 = pattern(0xc0de0000);
                    d.writeRegion(CMB, 0, p1);
                    assertArrayEquals(p1, edu.read(importer.iova()), "live: edu reads the CMB through the importer");
                    assertArrayEquals(p1, edu.read(BARE_IOVA), "live: and through the bare mapping");

                    nvme.setMemoryEnabled(false);
                    assertEquals(Importer.State.REVOKED, importer.state());
                    byte[] revoked = edu.read(importer.iova());
                    report.publishEntry("read while revoked", String.format("first bytes %02x %02x %02x %02x",
                            revoked[0], revoked[1], revoked[2], revoked[3]));
                    assertFalse(Arrays.equals(p1, revoked), "revoked: the IOMMU refuses the read");

                    nvme.setMemoryEnabled(true);
                    assertEquals(Importer.State.MAPPED, importer.state(), "memory on: the backend mapped it again");
                    byte[] p2 = pattern(0xbeef0000);
                    d.writeRegion(CMB, 0, p2);
                    assertArrayEquals(p2, edu.read(importer.iova()), "restored and remapped: edu reads the CMB again");
                    assertFalse(Arrays.equals(p2, edu.read(BARE_IOVA)),
                            "the kernel restored the buffer but not the bare mapping: it stays dead until remapped");

                    nvme.reset();
                    assertEquals(Importer.State.MAPPED, importer.state());
                    byte[] p3 = pattern(0xfeed0000);
                    d.writeRegion(CMB, 0, p3);
                    assertArrayEquals(p3, edu.read(importer.iova()), "after a reset (revoke + restore + remap)");

                    assertEquals(List.of("invalidated", "remapped", "invalidated", "remapped"), events);
                    assertEquals(2, importer.invalidations());
                    assertEquals(2, importer.remaps());
                    FfmVfioSyscalls.INSTANCE.ioasUnmap(imp.iommufd(), imp.ioas(), BARE_IOVA, 4096);
                }
            }
        }
    }
}

package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The importer contract on the lab kernel (iommufd): reachable means QEMU's edu, attached to the importer's IOAS
 * for the check, DMA-reads the pattern last written into the exported CMB page. Skipped on Debian's kernel, a
 * failure on the lab kernel when {@code /dev/iommu} is missing.
 */
@Tag("vm")
class LinuxIommufdImporterContractTest extends IommufdImporterContract {
    static final String EDU = "0000:00:06.0";
    private byte[] lastPattern = new byte[EduDmaEngine.LEN];

    @Override
    protected LinuxKernel createKernel() {
        if (!"lab".equals(VmLabKernel.booted())) {
            Assumptions.assumeTrue(Files.exists(Path.of("/dev/iommu")), "this kernel has no iommufd");
        }
        assertTrue(Files.exists(Path.of("/dev/iommu")), "the lab kernel must have /dev/iommu (CONFIG_IOMMUFD)");
        return new LinuxKernel(List.of(NVME));
    }

    /**
     * A new pattern goes into the CMB page while memory decoding is on (the BAR cannot be written while it is
     * off), then edu reads the IOVA; the read must return the last pattern written.
     */
    @Override
    protected boolean reachable(IommufdImporter importer, long cmbOffset) throws Exception {
        LinuxVfioDevice d = (LinuxVfioDevice) nvme;
        if (d != null && d.memoryEnabled()) {
            lastPattern = new byte[EduDmaEngine.LEN];
            ThreadLocalRandom.current().nextBytes(lastPattern);
            d.writeRegion(CMB, cmbOffset, lastPattern);
        }
        try (EduDmaEngine edu = new EduDmaEngine(EDU, importer.iommufd(), importer.ioas())) {
            return Arrays.equals(lastPattern, edu.read(IommufdImporter.IOVA));
        }
    }

    /** This process's fds on VFIO and iommufd nodes, dma-bufs and edu's memfd (not the JVM's jars and sockets). */
    @Override
    protected int openFds() throws Exception {
        int n = 0;
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : fds.toList()) {
                String target;
                try {
                    target = Files.readSymbolicLink(fd).toString();
                } catch (java.io.IOException gone) {
                    continue; // the listing's own directory fd, closed by now
                }
                if (target.startsWith("/dev/vfio") || target.startsWith("/dev/iommu") || target.startsWith("/dmabuf:")
                        || target.startsWith("/memfd:edu-pages")) {
                    n++;
                }
            }
        }
        return n;
    }
}

package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/** The importer contract over the fake {@code /dev/iommu}: reachable means a live IOMMU mapping at the IOVA. */
class FakeIommufdImporterContractTest extends IommufdImporterContract {
    @TempDir
    Path root;
    private FakeVfio fake;

    @Override
    protected LinuxKernel createKernel() {
        return new LinuxKernel(fake(), fake.dev(), fake.sysBusPci(), null);
    }

    private FakeVfio fake() {
        if (fake == null) fake = new FakeVfio(root, true, false, FakeVfio.lab());
        return fake;
    }

    @Override
    protected boolean reachable(IommufdImporter importer, long cmbOffset) {
        return fake.translates(importer.iommufd(), importer.ioas(), IommufdImporter.IOVA);
    }

    @Override
    protected int openFds() {
        return fake().openFds().size();
    }
}

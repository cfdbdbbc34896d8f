package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.AfterAll;
import org.vfioexport.kernel.VfioKernel;
import org.vfioexport.kernel.contract.KernelContract;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The Linux backend over {@link FakeVfio} holding the VM lab's four devices must pass the contract the real
 * kernel passes in the VM: the check that the fake answers what the kernel answers, and that the backend's logic
 * does not depend on anything the fake does differently. Every fd is closed at the end.
 */
class FakeVfioContractTest extends KernelContract {
    private Path root;
    private FakeVfio fake;

    @Override
    protected VfioKernel createKernel() throws IOException {
        root = Files.createTempDirectory("fake-vfio");
        fake = new FakeVfio(root, withIommufd(), false, FakeVfio.lab());
        return new LinuxKernel(fake, fake.dev(), fake.sysBusPci(), null);
    }

    /** Whether the fake kernel has IOMMUFD and the VFIO cdevs (then LinuxKernel takes the cdev path). */
    boolean withIommufd() {
        return false;
    }

    @Override
    protected OpenPath openPath() throws Exception {
        OpenPath p = VmLabKernel.pathOf((LinuxKernel) kernel, roles().edu());
        assertEquals(withIommufd() ? OpenPath.CDEV : OpenPath.GROUP, p, "the path LinuxKernel took");
        return p;
    }

    @AfterAll
    void nothingLeftOpen() throws IOException {
        assertEquals(java.util.Map.of(), fake.openFds(), "fds the contract left open");
        try (Stream<Path> s = Files.walk(root)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}

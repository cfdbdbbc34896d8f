package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestReporter;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.contract.KernelContract.OpenPath;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Facts about the real kernel that the sources leave open (docs/kernel-semantics.md §11), recorded in the VM
 * lab's report through the test reporter. Each test asserts only what is certain and publishes the rest.
 */
@Tag("vm")
class LinuxKernelObservationsTest {
    static final String NVME = "0000:00:07.0", EDU = "0000:00:06.0";
    final LinuxKernel kernel = new LinuxKernel();

    @Test
    void kernelAndPath(TestReporter report) throws Exception {
        report.publishEntry("kernel", Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip());
        report.publishEntry("open path", VmLabKernel.checkedPath(kernel, EDU) + " (booted: "
                + VmLabKernel.booted() + ", /dev/iommu " + (Files.exists(Path.of("/dev/iommu")) ? "present" : "absent") + ")");
        try (VfioDevice d = kernel.open(EDU)) {
            report.publishEntry("opened through", ((LinuxVfioDevice) d).openedThrough());
            Region config = d.region(Region.CONFIG);
            report.publishEntry("config region", "size " + config.size() + " offset 0x" + Long.toHexString(config.offset()));
            for (Region r : d.regions()) {
                report.publishEntry("edu region " + r.index(), r.kind().wire + " size " + r.size() + " offset 0x"
                        + Long.toHexString(r.offset()) + " flags " + r.flags());
            }
            assertTrue(((LinuxVfioDevice) d).dmaBufUnsupportedReason() == null);
        }
        // where every lab BAR sits (sysfs resource), for conf/vmlab-devices.json
        for (String id : kernel.deviceIds()) {
            try (VfioDevice d = kernel.open(id)) {
                for (int i = Region.BAR0; i <= Region.BAR5; i++) {
                    Region r = d.region(i);
                    if (r.size() != 0) {
                        report.publishEntry(id + " BAR" + i, r.kind().wire + " size 0x" + Long.toHexString(r.size())
                                + " at 0x" + Long.toHexString(r.address()));
                    }
                }
            }
        }
    }

    @Test
    void memoryBitAcrossCloseAndReopen(TestReporter report) throws Exception {
        for (String id : new String[] {EDU, NVME}) {
            try (VfioDevice d = kernel.open(id)) {
                d.setMemoryEnabled(false);
            }
            try (VfioDevice d = kernel.open(id)) {
                report.publishEntry(id + " memoryEnabled after close with memory off and reopen", String.valueOf(d.memoryEnabled()));
                d.setMemoryEnabled(true);
            }
        }
    }

    @Test
    void memoryBitAcrossReset(TestReporter report) throws Exception {
        try (VfioDevice d = kernel.open(NVME)) {
            d.setMemoryEnabled(false);
            try (DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(2, 0, 4096))) {
                d.reset();
                report.publishEntry("nvme memoryEnabled after reset with memory off", String.valueOf(d.memoryEnabled()));
            }
            d.setMemoryEnabled(true);
            d.reset();
            report.publishEntry("nvme memoryEnabled after reset with memory on", String.valueOf(d.memoryEnabled()));
        }
    }

    /** The group path allows a second open, the cdev path refuses it at the bind (KernelContract checks both). */
    @Test
    void openingAnOpenDeviceAgain(TestReporter report) throws Exception {
        OpenPath path = VmLabKernel.checkedPath(kernel, EDU);
        try (VfioDevice first = kernel.open(EDU)) {
            String result;
            DmaBuf kept = null;
            try (VfioDevice second = kernel.open(EDU)) {
                result = "second open succeeded";
                kept = second.exportDmaBuf(DmaBufRequest.get(0, 0, 4096));
            } catch (KernelException e) {
                result = "second open refused: " + e.getMessage();
                assertEquals(OpenPath.CDEV, path, "refused on the group path: " + e.getMessage());
                assertEquals("EINVAL", e.errnoName(), e.getMessage());
            }
            report.publishEntry("edu opened twice (" + path + " path)", result);
            if (kept != null) {
                DmaBuf fromSecond = kept;
                try (fromSecond) {
                    assertEquals(4096, org.vfioexport.ffm.posix.Posix.lseek(fromSecond.fd(), 0, 2),
                            "a dma-buf of the closed second fd stays valid");
                }
            }
            if (path == OpenPath.CDEV) assertNull(kept, "a second open on the cdev path succeeded");
            first.probeDmaBuf();
        }
    }

    @Test
    void hugeRangeCounts(TestReporter report) throws Exception {
        try (VfioDevice d = kernel.open(NVME)) {
            for (int n : new int[] {1 << 20, 1 << 28, 0xFFFFFFFF}) {
                String answer;
                try (DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(2, 0, 4096).withNrRanges(n))) {
                    answer = "accepted?! size " + b.size();
                } catch (KernelException e) {
                    answer = e.errnoName();
                }
                report.publishEntry("nr_ranges " + Integer.toUnsignedString(n) + " with one range supplied", answer);
            }
        }
    }

    @Test
    void theDmaBufFile(TestReporter report) throws Exception {
        try (VfioDevice d = kernel.open(NVME); DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(2, 4096, 8192))) {
            String link = org.vfioexport.ffm.posix.Posix.readlink("/proc/self/fd/" + b.fd());
            assertEquals("/dmabuf:", link);
            String info = Files.readString(Path.of("/proc/self/fdinfo/" + b.fd()));
            report.publishEntry("fdinfo", info.strip().replace('\n', ';').replace('\t', ' '));
            assertTrue(info.contains("size:\t8192"), info);
            assertTrue(info.contains("exp_name:\tvfio_pci_core"), info);
        }
    }
}

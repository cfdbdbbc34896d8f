package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.ffm.posix.Fd;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.linux.FakeVfio.BarType;
import org.vfioexport.kernel.linux.FakeVfio.Device;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Linux backend's two ways of opening a device, over {@link FakeVfio}: the group/container path with its
 * shared, refcounted group, and the cdev + iommufd path. What is counted is the fds the kernel side holds.
 */
class LinuxOpenPathsTest {
    static final String GPU = "0000:01:00.0", AUDIO = "0000:01:00.1", NIC = "0000:02:00.0";

    @TempDir
    Path root;

    /** A GPU and its audio function share IOMMU group 1; a NIC is alone in group 2. */
    static List<Device> machine() {
        return List.of(
                new Device(GPU, 1).withReset()
                        .bar(0, BarType.MEM32, 16 << 20, false, 0xfd00_0000L)
                        .bar(2, BarType.MEM64, 256 << 20, true, 0x80_0000_0000L),
                new Device(AUDIO, 1).bar(0, BarType.MEM32, 16 * 1024, false, 0xfeb0_0000L),
                new Device(NIC, 2).bar(0, BarType.MEM32, 128 * 1024, false, 0xfea0_0000L));
    }

    private static LinuxKernel kernel(FakeVfio fake) {
        return new LinuxKernel(fake, fake.dev(), fake.sysBusPci(), null);
    }

    private static void assertFds(FakeVfio fake, int n, String when) {
        Map<Integer, String> open = fake.openFds();
        assertEquals(n, open.size(), when + ": " + open.values());
    }

    @Test
    void twoDevicesOfOneGroupShareItAndTheLastCloseReleasesIt() throws Exception {
        FakeVfio fake = new FakeVfio(root, false, false, machine());
        LinuxKernel k = kernel(fake);
        VfioDevice gpu = k.open(GPU);
        assertFds(fake, 3, "container, group, GPU");
        assertEquals(Set.of("1"), k.openGroups());
        VfioDevice audio = k.open(AUDIO);
        assertFds(fake, 4, "the audio function joins the open group: one more device fd");
        assertEquals(1, fake.calls("VFIO_SET_IOMMU"), "the group was set up once");
        gpu.close();
        assertFds(fake, 3, "the group stays for the audio function");
        assertFalse(fake.groupReleased(1));
        audio.info(); // still usable
        audio.close();
        assertFds(fake, 0, "the last device took the group and container with it");
        assertTrue(fake.groupReleased(1), "a new open of /dev/vfio/1 would not be EBUSY");
        assertEquals(Set.of(), k.openGroups());
        // and again, closing in the other order
        gpu = k.open(GPU);
        audio = k.open(AUDIO);
        audio.close();
        assertFds(fake, 3, "container, group, GPU");
        gpu.close();
        assertFds(fake, 0, "all closed");
        assertTrue(fake.groupReleased(1));
    }

    @Test
    void groupsAreIndependent() throws Exception {
        FakeVfio fake = new FakeVfio(root, false, false, machine());
        LinuxKernel k = kernel(fake);
        try (VfioDevice gpu = k.open(GPU); VfioDevice nic = k.open(NIC)) {
            assertEquals(Set.of("1", "2"), k.openGroups());
            assertFds(fake, 6, "a container and a group per group, and the two devices");
            assertTrue(((LinuxVfioDevice) nic).openedThrough().endsWith("/dev/vfio/2"));
            assertTrue(((LinuxVfioDevice) gpu).openedThrough().endsWith("/dev/vfio/1"));
        }
        assertFds(fake, 0, "all closed");
    }

    @Test
    void aSecondOpenOfADeviceOnTheGroupPathSucceeds() throws Exception {
        FakeVfio fake = new FakeVfio(root, false, false, machine());
        LinuxKernel k = kernel(fake);
        // docs/kernel-semantics.md: a second open of an open device succeeds on the group path [7.2]
        try (VfioDevice a = k.open(GPU); VfioDevice b = k.open(GPU)) {
            assertFds(fake, 4, "one group, two device fds");
            a.close();
            b.info();
        }
        assertFds(fake, 0, "all closed");
    }

    @Test
    void aGroupWithAMemberOnAHostDriverIsNotViable() throws Exception {
        List<Device> m = machine();
        m.get(1).boundTo("snd_hda_intel");
        FakeVfio fake = new FakeVfio(root, false, false, m);
        LinuxKernel k = kernel(fake);
        KernelException e = assertThrows(KernelException.class, () -> k.open(GPU));
        assertEquals("EINVAL", e.errnoName());
        assertTrue(e.getMessage().contains("not viable"), e.getMessage());
        assertFds(fake, 0, "the refused open closed what it opened");
        assertTrue(fake.groupReleased(1));
        assertEquals("ENODEV", assertThrows(KernelException.class, () -> k.open(AUDIO)).errnoName(),
                "a function on a host driver is not opened at all");
    }

    @Test
    void noIommuModeOpensTheNoiommuNodeWithTheNoiommuDriver() throws Exception {
        FakeVfio fake = new FakeVfio(root, false, true, machine());
        LinuxKernel k = kernel(fake);
        try (VfioDevice nic = k.open(NIC)) {
            assertTrue(((LinuxVfioDevice) nic).openedThrough().endsWith("/dev/vfio/noiommu-2"));
        }
        assertFds(fake, 0, "all closed");
    }

    @Test
    void theCdevPathBindsToAnIommufdPerDevice() throws Exception {
        FakeVfio fake = new FakeVfio(root, true, false, machine());
        LinuxKernel k = kernel(fake);
        try (VfioDevice gpu = k.open(GPU)) {
            assertTrue(((LinuxVfioDevice) gpu).openedThrough().contains("/dev/vfio/devices/vfio"),
                    ((LinuxVfioDevice) gpu).openedThrough());
            assertFds(fake, 2, "the device cdev and its iommufd");
            assertEquals(Set.of(), k.openGroups(), "no group is opened on this path");
            assertEquals(1, fake.calls("VFIO_DEVICE_BIND_IOMMUFD"));
            assertEquals(1, fake.calls("IOMMU_IOAS_ALLOC"));
            assertEquals(1, fake.calls("VFIO_DEVICE_ATTACH_IOMMUFD_PT"));
            try (VfioDevice audio = k.open(AUDIO)) {
                assertFds(fake, 4, "each device has its own iommufd");
                audio.probeDmaBuf();
            }
            assertFds(fake, 2, "the audio function's cdev and iommufd are closed");
            // the cdev path allows one open of a device: the second bind is EINVAL (vfio_df_open)
            KernelException e = assertThrows(KernelException.class, () -> k.open(GPU));
            assertEquals("EINVAL", e.errnoName());
            assertTrue(e.getMessage().contains("VFIO_DEVICE_BIND_IOMMUFD"), e.getMessage());
            assertFds(fake, 2, "the refused open closed its cdev and iommufd");
            try (DmaBuf b = gpu.exportDmaBuf(DmaBufRequest.get(2, 0, 1 << 20))) {
                assertFds(fake, 3, "and the dma-buf");
                assertEquals(1 << 20, b.size());
            }
        }
        assertFds(fake, 0, "all closed");
    }

    @Test
    void theGroupPathServesADeviceWithoutACdevEvenWhenTheKernelHasIommufd() throws Exception {
        List<Device> m = machine();
        FakeVfio fake = new FakeVfio(root, true, false, m);
        // a device that vfio-pci bound before the cdev existed, or a kernel where it has none: no vfio-dev entry
        java.nio.file.Files.walk(fake.sysBusPci().resolve("devices").resolve(NIC).resolve("vfio-dev"))
                .sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        LinuxKernel k = kernel(fake);
        try (VfioDevice nic = k.open(NIC)) {
            assertTrue(((LinuxVfioDevice) nic).openedThrough().endsWith("/dev/vfio/2"));
        }
        assertFds(fake, 0, "all closed");
    }

    @Test
    void aDmaBufClosesOnceAndItsDupIsTheCallersOwn() throws Exception {
        FakeVfio fake = new FakeVfio(root, false, false, machine());
        LinuxKernel k = kernel(fake);
        try (VfioDevice gpu = k.open(GPU)) {
            DmaBuf b = gpu.exportDmaBuf(DmaBufRequest.get(2, 0, 2 * FakeVfio.PAGE));
            Fd dup = b.dup();
            assertFds(fake, 5, "container, group, device, dma-buf and its dup");
            b.close();
            b.close();
            assertTrue(b.isClosed());
            assertNull(b.dup(), "a closed buffer has nothing to duplicate");
            assertFds(fake, 4, "the dup stays");
            dup.close();
        }
        assertFds(fake, 0, "all closed");
    }
}

package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.kernel.DeviceInfo;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.RegionKind;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.linux.FakeVfio.BarType;
import org.vfioexport.kernel.linux.FakeVfio.Device;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How the Linux backend reads a device over {@link FakeVfio}: REGION_INFO decoded with config space and sysfs
 * (kinds, prefetchable, 64-bit upper halves, addresses, the ROM and VGA cases), the dma-buf PROBE, and the
 * config-region offset it caches.
 */
class LinuxRegionsTest {
    static final String NVME = "0000:00:07.0", IVSHMEM = "0000:00:04.0", TESTDEV = "0000:00:05.0", EDU = "0000:00:06.0";
    static final String VGA = "0000:03:00.0";

    @TempDir
    Path root;

    private FakeVfio fake;
    private LinuxKernel kernel;

    private void start(List<Device> machine) {
        fake = new FakeVfio(root, false, false, machine);
        kernel = new LinuxKernel(fake, fake.dev(), fake.sysBusPci(), null);
    }

    private void startLab() {
        start(FakeVfio.lab());
    }

    private static void assertRegion(Region r, long size, RegionKind kind, boolean prefetchable, long address) {
        assertAll("region " + r.index(),
                () -> assertEquals(size, r.size(), "size"),
                () -> assertEquals(kind, r.kind(), "kind"),
                () -> assertEquals(prefetchable, r.prefetchable(), "prefetchable"),
                () -> assertEquals(Long.toHexString(address), Long.toHexString(r.address()), "address"),
                () -> assertEquals((long) r.index() << 40, r.offset(), "offset in the device fd"));
    }

    @Test
    void theLabDevicesDecodeAsTheirGuestShowsThem() throws KernelException {
        startLab();
        try (VfioDevice d = kernel.open(NVME)) {
            DeviceInfo info = d.info();
            assertTrue(info.resetSupported());
            assertEquals(Region.NUM_REGIONS, info.numRegions());
            List<Region> all = d.regions();
            assertRegion(all.get(0), 16 * 1024, RegionKind.MMIO, false, 0xfeb1_0000L);
            assertRegion(all.get(1), 0, RegionKind.ABSENT, false, 0);       // upper half of the 64-bit BAR0
            assertRegion(all.get(2), 16 << 20, RegionKind.MMIO, true, 0xfd00_0000L);
            assertRegion(all.get(3), 0, RegionKind.ABSENT, false, 0);
            assertRegion(all.get(6), 0, RegionKind.ABSENT, false, 0);       // no option ROM
            assertEquals(RegionKind.CONFIG, all.get(7).kind());
            assertEquals(4096, all.get(7).size(), "a PCI Express function's config space");
            // VGA: EINVAL, reported absent (with no offset: the kernel gave none)
            assertEquals(RegionKind.ABSENT, all.get(8).kind());
            assertEquals(0, all.get(8).size());
            assertTrue(all.get(2).mmap());
        }
        try (VfioDevice d = kernel.open(TESTDEV)) {
            assertRegion(d.region(0), 4096, RegionKind.MMIO, false, 0xfeb1_8000L);
            assertRegion(d.region(1), 256, RegionKind.IO, false, 0xc000);
            assertFalse(d.region(1).mmap(), "I/O ports are not mmapped");
            assertFalse(d.info().resetSupported());
        }
        try (VfioDevice d = kernel.open(IVSHMEM)) {
            Region bar0 = d.region(0);
            assertRegion(bar0, 256, RegionKind.MMIO, false, 0xfeb1_7000L);
            assertTrue(bar0.mmap(), "a page-aligned sub-page BAR is mmappable (vfio_pci_probe_mmaps)");
        }
        assertEquals(0, fake.openFds().size(), fake.openFds().toString());
    }

    @Test
    void aBarWithCapabilitiesKeepsTheCapsFlag() throws KernelException {
        List<Device> lab = FakeVfio.lab();
        lab.getFirst().msixBar = 0;
        start(lab);
        try (VfioDevice d = kernel.open(NVME)) {
            Region bar0 = d.region(0);
            // the chain is not read (the backend asks for the bare struct): the flag says there is one
            assertEquals(Region.FLAG_READ | Region.FLAG_WRITE | Region.FLAG_MMAP | Region.FLAG_CAPS, bar0.flags());
            assertEquals(RegionKind.MMIO, bar0.kind());
        }
    }

    @Test
    void romAndVgaRegionsOfADeviceThatHasThem() throws KernelException {
        Device vga = new Device(VGA, 7).bar(0, BarType.MEM32, 16 << 20, true, 0xe000_0000L)
                .bar(2, BarType.MEM32, 4096, false, 0xfebf_0000L);
        vga.vga = true;
        vga.romSize = 64 * 1024;
        vga.romAddress = 0xfebe_0000L;
        start(List.of(vga));
        try (VfioDevice d = kernel.open(VGA)) {
            Region rom = d.region(Region.ROM);
            assertRegion(rom, 64 * 1024, RegionKind.ROM, false, 0xfebe_0000L);
            assertEquals(Region.FLAG_READ, rom.flags(), "a ROM is read-only");
            Region legacy = d.region(Region.VGA);
            assertEquals(RegionKind.VGA, legacy.kind());
            assertEquals(0xc0000, legacy.size(), "the VGA region spans to 0xbffff so offsets are addresses");
            assertEquals(0, legacy.address());
            assertRegion(d.region(0), 16 << 20, RegionKind.MMIO, true, 0xe000_0000L);  // 32-bit prefetchable
        }
    }

    @Test
    void aRegionPastTheLastIsEinvalNotAbsent() throws KernelException {
        startLab();
        try (VfioDevice d = kernel.open(EDU)) {
            for (int i : new int[] {Region.NUM_REGIONS, 100}) {
                KernelException e = assertThrows(KernelException.class, () -> d.region(i));
                assertEquals("EINVAL", e.errnoName(), "region " + i);
            }
        }
    }

    @Test
    void probeSaysWhyADeviceCannotExport() throws Exception {
        List<Device> lab = FakeVfio.lab();
        lab.get(1).dmabuf = false;          // a kernel without CONFIG_VFIO_PCI_DMABUF
        lab.get(2).variantDriver = true;    // a variant driver without the exporter op
        start(lab);
        try (VfioDevice nvme = kernel.open(NVME); VfioDevice iv = kernel.open(IVSHMEM);
             VfioDevice test = kernel.open(TESTDEV)) {
            assertNull(((LinuxVfioDevice) nvme).dmaBufUnsupportedReason());
            assertNull(nvme.featureDmaBuf(org.vfioexport.kernel.DmaBufRequest.probe()), "PROBE gives no fd");
            assertTrue(((LinuxVfioDevice) iv).dmaBufUnsupportedReason().contains("ENOTTY"));
            assertTrue(((LinuxVfioDevice) test).dmaBufUnsupportedReason().contains("EOPNOTSUPP"));
            assertEquals(3 * 3 /* container, group, device */, fake.openFds().size(), "PROBE leaves no fd");
            nvme.close();
            // any other answer is an error, not a reason
            assertEquals("EBADF", assertThrows(KernelException.class,
                    () -> ((LinuxVfioDevice) nvme).dmaBufUnsupportedReason()).errnoName());
        }
    }

    @Test
    void theConfigOffsetIsAskedOnceAndOnlyRememberedWhenKnown() throws KernelException {
        startLab();
        try (VfioDevice d = kernel.open(NVME)) {
            String config = "VFIO_DEVICE_GET_REGION_INFO[7]";
            // the first config access fails in REGION_INFO: nothing is cached, the next access asks again
            fake.failNth(1, Errno.ENOMEM.value);
            assertEquals("ENOMEM", assertThrows(KernelException.class, d::memoryEnabled).errnoName());
            assertEquals(1, fake.calls(config));
            assertTrue(d.memoryEnabled(), "memory decoding is on after open");
            assertEquals(2, fake.calls(config));
            for (int bar = 0; bar <= 5; bar++) d.region(bar);   // each implemented BAR reads its config dword
            d.setMemoryEnabled(false);
            assertFalse(d.memoryEnabled());
            d.setMemoryEnabled(true);
            assertEquals(2, fake.calls(config), "asked once, then remembered");
        }
    }

    @Test
    void theMemoryBitIsWrittenAloneAndComesBackOnAtTheNextOpen() throws Exception {
        startLab();
        try (VfioDevice d = kernel.open(EDU)) {
            LinuxVfioDevice l = (LinuxVfioDevice) d;
            FakeVfio.Device edu = fake.device(EDU);
            edu.config[4] |= 0x4;               // bus master on: a read-modify-write keeps it
            d.setMemoryEnabled(false);
            assertEquals(0x4, edu.config[4] & 0x7);
            d.setMemoryEnabled(true);
            assertEquals(0x6, edu.config[4] & 0x7);
            d.setMemoryEnabled(false);
            assertTrue(l.openedThrough().endsWith("/5"));
        }
        // docs/kernel-semantics.md §12: closing the device restores it, on at the next open
        try (VfioDevice d = kernel.open(EDU)) {
            assertTrue(d.memoryEnabled());
        }
    }
}

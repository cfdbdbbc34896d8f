package org.vfioexport.kernel.contract;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestReporter;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DeviceInfo;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;
import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.RegionKind;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.VfioKernel;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.vfioexport.kernel.DmaBufRequest.FEATURE_DMA_BUF;
import static org.vfioexport.kernel.DmaBufRequest.GET;
import static org.vfioexport.kernel.DmaBufRequest.O_CLOEXEC;
import static org.vfioexport.kernel.DmaBufRequest.O_RDWR;
import static org.vfioexport.kernel.DmaBufRequest.PROBE;
import static org.vfioexport.kernel.DmaBufRequest.SET;

/**
 * What every {@link VfioKernel} must do, written once and run against each backend: the simulated kernel in the
 * normal build and the real Linux kernel inside the VM lab ({@code src/test/vm/run}). The expected answers are
 * those of Linux 7.2 as the lab observed them (docs/kernel-semantics.md §2 and §12); the devices are the lab's four,
 * described in {@code conf/vmlab-devices.json}.
 *
 * <p>Each test opens the device it needs and closes it again, so no test sees another's state.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class KernelContract {
    /** The x86-64 page size: dma-buf ranges are checked against PAGE_SIZE. */
    protected static final long P = 4096;
    static final int OPEN_FLAGS = O_RDWR | O_CLOEXEC;

    /** Which lab device plays which part. */
    public record Roles(String nvme, String ivshmem, String testdev, String edu) {
        public static final Roles VMLAB = new Roles("0000:00:07.0", "0000:00:04.0", "0000:00:05.0", "0000:00:06.0");

        List<String> all() {
            return List.of(nvme, ivshmem, testdev, edu);
        }
    }

    /**
     * How the backend reaches a device. The two paths of Linux answer alike except where this says otherwise
     * (docs/kernel-semantics.md §1.4): the contract asks the backend which one it took and expects that path's
     * answer, so a backend on either path is checked rather than skipped.
     */
    public enum OpenPath {
        /** {@code /dev/vfio/<group>} in a type1 container, then {@code VFIO_GROUP_GET_DEVICE_FD}. */
        GROUP,
        /** {@code /dev/vfio/devices/vfioN} bound to {@code /dev/iommu} with {@code VFIO_DEVICE_BIND_IOMMUFD}. */
        CDEV
    }

    protected VfioKernel kernel;
    protected LabDevices lab;
    protected OpenPath path;

    /** The backend under test, configured with the lab's four devices. */
    protected abstract VfioKernel createKernel() throws Exception;

    /** The path {@link #kernel} opens devices through (asked once the kernel is known to be available). */
    protected abstract OpenPath openPath() throws Exception;

    protected Roles roles() {
        return Roles.VMLAB;
    }

    /** {@code conf/vmlab-devices.json}, which a configurable backend can read its devices from. */
    protected static java.nio.file.Path labDevicesFile() {
        return LabDevices.file();
    }

    @BeforeAll
    void startKernel() throws Exception {
        lab = LabDevices.load();
        kernel = createKernel();
        assumeTrue(kernel.isAvailable(), () -> kernel.name() + " kernel unavailable: " + kernel.unavailabilityCause());
        path = openPath();
    }

    @AfterAll
    void stopKernel() {
        if (kernel != null) kernel.close();
    }

    // ---- helpers -----------------------------------------------------------------------------------------

    /** A BAR the device exports from: the device's largest memory BAR. */
    record MemBar(String device, int index, long size) {}

    List<MemBar> memoryBars() {
        List<MemBar> out = new ArrayList<>();
        for (String id : roles().all()) {
            LabDevices.Bar best = null;
            for (LabDevices.Bar b : lab.get(id).bars().values()) {
                if (b.kind() == RegionKind.MMIO && b.size() >= P && (best == null || b.size() > best.size())) best = b;
            }
            out.add(new MemBar(id, best.index(), best.size()));
        }
        return out;
    }

    static DmaBufRequest get(int region, DmaRange... ranges) {
        return DmaBufRequest.get(region, List.of(ranges), OPEN_FLAGS);
    }

    static DmaRange r(long offset, long length) {
        return new DmaRange(offset, length);
    }

    /** One request the kernel must refuse, and the errno it must give. */
    public record Refusal(String name, String device, DmaBufRequest request, Errno errno) {
        @Override
        public String toString() {
            return name + " on " + device + " -> " + errno;
        }
    }

    void assertRefused(Refusal row) throws KernelException {
        try (VfioDevice d = kernel.open(row.device())) {
            KernelException e = assertThrows(KernelException.class, () -> {
                DmaBuf b = d.featureDmaBuf(row.request());
                if (b != null) b.close(); // accepted: do not leak it, the assertion reports the failure
            }, row.name() + ": accepted");
            assertEquals(Ops.FEATURE_DMA_BUF, e.op());
            assertEquals(row.errno().name(), e.errnoName(), row.name());
        }
    }

    static long seekEnd(int fd) throws PosixException {
        return Posix.lseek(fd, 0, Posix.SEEK_END);
    }

    // ---- §2 / §12: every validation row, with its errno ---------------------------------------------------

    /** Rows that hold for the memory BAR of every lab device (§12: "the same on all four devices"). */
    List<Refusal> everyDeviceRows() {
        List<Refusal> rows = new ArrayList<>();
        for (MemBar m : memoryBars()) {
            int b = m.index();
            long s = m.size();
            String d = m.device();
            DmaBufRequest ok = get(b, r(0, P));
            rows.add(new Refusal("argsz 4 (< header)", d, ok.withArgsz(4), Errno.EINVAL));
            rows.add(new Refusal("argsz of the header only", d, ok.withArgsz(DmaBufRequest.HEADER_SIZE), Errno.EINVAL));
            rows.add(new Refusal("argsz one short of the body", d, ok.withArgsz(23), Errno.EINVAL));
            rows.add(new Refusal("unknown feature flag bit", d, ok.withFeatureFlags(GET | FEATURE_DMA_BUF | 0x80000), Errno.EINVAL));
            rows.add(new Refusal("GET|SET without PROBE", d, ok.withFeatureFlags(GET | SET | FEATURE_DMA_BUF), Errno.EINVAL));
            rows.add(new Refusal("SET instead of GET", d, ok.withFeatureFlags(SET | FEATURE_DMA_BUF), Errno.EINVAL));
            rows.add(new Refusal("PROBE|SET", d, ok.withFeatureFlags(PROBE | SET | FEATURE_DMA_BUF), Errno.EINVAL));
            rows.add(new Refusal("neither GET nor SET", d, ok.withFeatureFlags(FEATURE_DMA_BUF), Errno.EINVAL));
            rows.add(new Refusal("nr_ranges 0", d, ok.withNrRanges(0), Errno.EINVAL));
            rows.add(new Refusal("flags 1", d, ok.withFlags(1), Errno.EINVAL));
            rows.add(new Refusal("flags 0x80000000", d, ok.withFlags(0x80000000), Errno.EINVAL));
            rows.add(new Refusal("region 6 (ROM)", d, get(Region.ROM, r(0, P)), Errno.ENODEV));
            rows.add(new Refusal("region 7 (config)", d, get(Region.CONFIG, r(0, P)), Errno.ENODEV));
            rows.add(new Refusal("region 100", d, get(100, r(0, P)), Errno.ENODEV));
            rows.add(new Refusal("region 6 with an unaligned offset", d, get(Region.ROM, r(1, P)), Errno.ENODEV));
            rows.add(new Refusal("nr_ranges 100000, one range supplied", d, ok.withNrRanges(100000), Errno.EFAULT));
            rows.add(new Refusal("length 0", d, get(b, r(0, 0)), Errno.EINVAL));
            rows.add(new Refusal("unaligned offset", d, get(b, r(1, P)), Errno.EINVAL));
            rows.add(new Refusal("unaligned length", d, get(b, r(0, P + 1)), Errno.EINVAL));
            rows.add(new Refusal("past the end of the BAR", d, get(b, r(0, s + P)), Errno.EINVAL));
            rows.add(new Refusal("offset = BAR size", d, get(b, r(s, P)), Errno.EINVAL));
            rows.add(new Refusal("offset + length wraps u64", d, get(b, r(-P, 2 * P)), Errno.EOVERFLOW));
            rows.add(new Refusal("offset 2^64 - page, unaligned length", d, get(b, r(-P, P + 1)), Errno.EINVAL));
            rows.add(new Refusal("offset 2^63", d, get(b, r(1L << 63, P)), Errno.EINVAL));
            rows.add(new Refusal("second range unaligned", d, get(b, r(0, P), r(1, P)), Errno.EINVAL));
            rows.add(new Refusal("second range past the end", d, get(b, r(0, P), r(s, P)), Errno.EINVAL));
        }
        return rows;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("everyDeviceRows")
    void refusesOnEveryDevice(Refusal row) throws KernelException {
        assertRefused(row);
    }

    /** Rows tied to one device's BAR layout: absent, I/O-port and sub-page BARs. */
    List<Refusal> deviceSpecificRows() {
        Roles x = roles();
        return List.of(
                new Refusal("absent BAR1", x.edu(), get(1, r(0, P)), Errno.ENODEV),
                new Refusal("absent BAR5", x.edu(), get(5, r(0, P)), Errno.ENODEV),
                new Refusal("absent BAR1 (upper half of 64-bit BAR0)", x.nvme(), get(1, r(0, P)), Errno.ENODEV),
                new Refusal("absent BAR1", x.ivshmem(), get(1, r(0, P)), Errno.ENODEV),
                new Refusal("absent BAR2", x.testdev(), get(2, r(0, P)), Errno.ENODEV),
                new Refusal("nr_ranges 0 on an absent BAR (count checked first)", x.edu(), get(1, r(0, P)).withNrRanges(0), Errno.EINVAL),
                new Refusal("absent BAR with an unaligned offset (BAR checked before ranges)", x.edu(), get(1, r(1, P)), Errno.ENODEV),
                new Refusal("absent BAR with length 0", x.edu(), get(1, r(0, 0)), Errno.ENODEV),
                new Refusal("I/O-port BAR1", x.testdev(), get(1, r(0, P)), Errno.EINVAL),
                new Refusal("I/O-port BAR1 with an unaligned offset", x.testdev(), get(1, r(1, P)), Errno.EINVAL),
                new Refusal("I/O-port BAR1 past its end", x.testdev(), get(1, r(0, 2 * P)), Errno.EINVAL),
                new Refusal("memory BAR0 smaller than a page (256 B)", x.ivshmem(), get(0, r(0, P)), Errno.EINVAL),
                // the range array is allocated before it is copied: 16 MiB and more cannot be allocated
                new Refusal("nr_ranges 2^20, one range supplied", x.nvme(), get(2, r(0, P)).withNrRanges(1 << 20), Errno.ENOMEM),
                new Refusal("nr_ranges 2^32-1, one range supplied", x.nvme(), get(2, r(0, P)).withNrRanges(-1), Errno.ENOMEM),
                new Refusal("overlapping ranges past a one-page BAR", x.testdev(), get(0, r(0, 2 * P), r(P, P)), Errno.EINVAL));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("deviceSpecificRows")
    void refusesDeviceSpecific(Refusal row) throws KernelException {
        assertRefused(row);
    }

    // ---- near 2^64: the answer depends on where the BAR sits ---------------------------------------------

    /** One page at offset 2^64 - 2^k on one memory BAR. */
    public record NearTop(String device, int bar, int k) {
        long offset() {
            return -(1L << k);
        }

        @Override
        public String toString() {
            return device + " BAR" + bar + ": one page at 2^64 - 2^" + k;
        }
    }

    /** k = 32..39 on every memory BAR of every lab device (the sub-page ones included). */
    List<NearTop> nearTopCases() {
        List<NearTop> out = new ArrayList<>();
        for (String id : roles().all()) {
            for (LabDevices.Bar b : lab.get(id).bars().values()) {
                if (b.kind() != RegionKind.MMIO) continue;
                for (int k = 32; k <= 39; k++) out.add(new NearTop(id, b.index(), k));
            }
        }
        return out;
    }

    /**
     * What vfio_pci_core_fill_phys_vec answers for {@code [offset, offset + length)} of a BAR at {@code start} of
     * {@code size} bytes: pci_resource_start + offset, then + length, each with check_add_overflow on the u64
     * phys_addr_t (a wrap is EOVERFLOW), then the end against start + size (past it is EINVAL). A memory BAR
     * smaller than a page has no P2P provider: EINVAL before any of it.
     */
    static Errno expectedRangeErrno(long start, long size, long offset, long length) {
        if (size < P) return Errno.EINVAL;
        long a = start + offset;
        if (Long.compareUnsigned(a, start) < 0) return Errno.EOVERFLOW;
        long end = a + length;
        if (Long.compareUnsigned(end, a) < 0) return Errno.EOVERFLOW;
        return Long.compareUnsigned(end, start + size) > 0 ? Errno.EINVAL : null;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("nearTopCases")
    void aPageNearTheTopOfTheAddressSpaceDependsOnTheBarAddress(NearTop c) throws KernelException {
        try (VfioDevice d = kernel.open(c.device())) {
            Region bar = d.region(c.bar());
            // the errno follows from the address the device itself reports, whatever the placement
            Errno want = expectedRangeErrno(bar.address(), bar.size(), c.offset(), P);
            assertNotNull(want, c + " would be inside the BAR at 0x" + Long.toHexString(bar.address()));
            KernelException e = assertThrows(KernelException.class, () -> {
                DmaBuf b = d.featureDmaBuf(get(c.bar(), r(c.offset(), P)));
                if (b != null) b.close();
            }, c + ": accepted");
            assertEquals(want.name(), e.errnoName(), c + " with the BAR at 0x" + Long.toHexString(bar.address()));
        }
    }

    // ---- accepted requests and sizes ---------------------------------------------------------------------

    @Test
    void probeAnswersZeroOnEveryDevice() throws KernelException {
        for (String id : roles().all()) {
            try (VfioDevice d = kernel.open(id)) {
                assertNull(d.featureDmaBuf(DmaBufRequest.probe()), id + ": PROBE|GET gives no fd");
                d.probeDmaBuf();
            }
        }
    }

    List<MemBar> memoryBarsForSizes() {
        return memoryBars();
    }

    /** The slice and multi-range cases need at least four pages. */
    List<MemBar> memoryBarsOfFourPages() {
        return memoryBars().stream().filter(m -> m.size() >= 4 * P).toList();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("memoryBarsForSizes")
    void wholeBarExportHasTheBarSize(MemBar m) throws Exception {
        try (VfioDevice d = kernel.open(m.device()); DmaBuf b = d.exportDmaBuf(get(m.index(), r(0, m.size())))) {
            assertTrue(b.fd() > 0, "fd " + b.fd());
            assertEquals(m.size(), b.size());
            assertEquals(m.size(), seekEnd(b.fd()), "lseek(fd, 0, SEEK_END)");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("memoryBarsOfFourPages")
    void sizeIsTheSumOfTheRanges(MemBar m) throws Exception {
        try (VfioDevice d = kernel.open(m.device())) {
            try (DmaBuf slice = d.exportDmaBuf(get(m.index(), r(P, 2 * P)))) {
                assertEquals(2 * P, seekEnd(slice.fd()), "one slice {1 page, 2 pages}");
            }
            try (DmaBuf two = d.exportDmaBuf(get(m.index(), r(0, P), r(3 * P, P)))) {
                assertEquals(2 * P, two.size());
                assertEquals(2 * P, seekEnd(two.fd()), "two ranges {0,1pg}+{3pg,1pg}");
            }
            try (DmaBuf overlap = d.exportDmaBuf(get(m.index(), r(0, 2 * P), r(P, P)))) {
                assertEquals(3 * P, overlap.size());
                assertEquals(3 * P, seekEnd(overlap.fd()), "overlapping {0,2pg}+{1pg,1pg} are accepted, size = sum");
            }
            try (DmaBuf unsorted = d.exportDmaBuf(get(m.index(), r(3 * P, P), r(0, P)))) {
                assertEquals(2 * P, seekEnd(unsorted.fd()), "unsorted ranges are accepted");
            }
        }
    }

    @Test
    void openFlagsAreNotValidated() throws Exception {
        MemBar m = memoryBars().get(0);
        DmaBufRequest q = DmaBufRequest.get(m.index(), List.of(r(0, P)), Posix.O_DIRECTORY | O_CLOEXEC);
        try (VfioDevice d = kernel.open(m.device()); DmaBuf b = d.exportDmaBuf(q)) {
            assertEquals(P, seekEnd(b.fd()), "O_DIRECTORY is accepted as open_flags");
        }
    }

    static final int[] OPEN_FLAG_CASES = {Posix.O_RDWR | Posix.O_CLOEXEC, Posix.O_RDONLY, Posix.O_WRONLY | Posix.O_CLOEXEC, Posix.O_RDWR};

    @Test
    protected void openFlagsSetTheAccessMode() throws Exception {
        MemBar m = memoryBars().get(0);
        try (VfioDevice d = kernel.open(m.device())) {
            for (int flags : OPEN_FLAG_CASES) {
                try (DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(m.index(), List.of(r(0, P)), flags))) {
                    int fl = Posix.fcntl(b.fd(), Posix.F_GETFL, 0);
                    assertEquals(flags & Posix.O_ACCMODE, fl & Posix.O_ACCMODE, "access mode of open_flags 0" + Integer.toOctalString(flags));
                }
            }
        }
    }

    @Test
    protected void openFlagsSetCloseOnExec() throws Exception {
        MemBar m = memoryBars().get(0);
        try (VfioDevice d = kernel.open(m.device())) {
            for (int flags : OPEN_FLAG_CASES) {
                try (DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(m.index(), List.of(r(0, P)), flags))) {
                    int fd = Posix.fcntl(b.fd(), Posix.F_GETFD, 0);
                    assertEquals((flags & Posix.O_CLOEXEC) != 0, (fd & Posix.FD_CLOEXEC) != 0, "close-on-exec of open_flags 0" + Integer.toOctalString(flags));
                }
            }
        }
    }

    @Test
    void argszLargerThanTheBufferIsAccepted() throws Exception {
        MemBar m = memoryBars().get(0);
        // the kernel checks only that argsz covers header and body; it never reads argsz bytes
        try (VfioDevice d = kernel.open(m.device()); DmaBuf b = d.exportDmaBuf(get(m.index(), r(0, P)).withArgsz(4096))) {
            assertEquals(P, seekEnd(b.fd()));
        }
    }

    @Test
    void probeWithoutGetAnswersZero() throws KernelException {
        try (VfioDevice d = kernel.open(roles().nvme())) {
            assertNull(d.featureDmaBuf(DmaBufRequest.probe().withFeatureFlags(PROBE | FEATURE_DMA_BUF)), "PROBE alone");
            // PROBE is answered before the body is looked at
            assertNull(d.featureDmaBuf(get(100, r(1, 0)).withFeatureFlags(PROBE | GET | FEATURE_DMA_BUF).withNrRanges(0)),
                    "PROBE|GET with a body that a GET would refuse");
        }
    }

    @Test
    void aRefusedExportLeaksNoFd() throws Exception {
        MemBar m = memoryBars().get(0);
        try (VfioDevice d = kernel.open(m.device())) {
            int before = Posix.open("/dev/null", Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
            Posix.close(before);
            assertThrows(KernelException.class, () -> d.exportDmaBuf(get(m.index(), r(1, P))));
            assertThrows(KernelException.class, () -> d.exportDmaBuf(get(m.index(), r(0, P)).withNrRanges(100000)));
            int after = Posix.open("/dev/null", Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
            Posix.close(after);
            assertEquals(before, after, "the lowest free fd moved: a refused export left an fd open");
        }
    }

    @Test
    void concurrentExportsFromOneDevice() throws Exception {
        MemBar m = memoryBars().get(0);
        int threads = 4, each = 25;
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(threads);
        try (VfioDevice d = kernel.open(m.device())) {
            List<java.util.concurrent.Callable<List<DmaBuf>>> work = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                long offset = (t % (m.size() / P)) * P;
                work.add(() -> {
                    List<DmaBuf> mine = new ArrayList<>();
                    for (int k = 0; k < each; k++) mine.add(d.exportDmaBuf(get(m.index(), r(offset, P))));
                    return mine;
                });
            }
            List<DmaBuf> all = new ArrayList<>();
            for (java.util.concurrent.Future<List<DmaBuf>> f : pool.invokeAll(work, 120, java.util.concurrent.TimeUnit.SECONDS)) {
                all.addAll(f.get());
            }
            try {
                assertEquals(threads * each, all.stream().mapToInt(DmaBuf::fd).distinct().count(), "every export has its own fd");
                for (DmaBuf b : all) assertEquals(P, seekEnd(b.fd()));
            } finally {
                all.forEach(DmaBuf::close);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    // ---- device info and regions -------------------------------------------------------------------------

    @Test
    void deviceInfoAndBarsMatchTheLab() throws KernelException {
        // every mismatch of every device at once: a moved BAR shows the whole new layout in one run
        List<org.junit.jupiter.api.function.Executable> checks = new ArrayList<>();
        for (String id : roles().all()) {
            LabDevices.Device want = lab.get(id);
            try (VfioDevice d = kernel.open(id)) {
                DeviceInfo info = d.info();
                assertEquals(want.reset(), info.resetSupported(), id + " reset flag");
                assertTrue((info.flags() & DeviceInfo.FLAG_PCI) != 0, id + " is a vfio-pci device");
                assertTrue(info.numRegions() >= Region.NUM_REGIONS, id + " numRegions " + info.numRegions());
                for (int i = Region.BAR0; i <= Region.BAR5; i++) {
                    Region got = d.region(i);
                    LabDevices.Bar bar = want.bar(i);
                    String what = id + " BAR" + i + " ";
                    checks.add(() -> assertEquals(bar.index(), got.index(), what + "index"));
                    checks.add(() -> assertEquals(bar.size(), got.size(), what + "size"));
                    checks.add(() -> assertEquals(bar.kind(), got.kind(), what + "kind"));
                    checks.add(() -> assertEquals(bar.prefetchable(), got.prefetchable(), what + "prefetchable"));
                    checks.add(() -> assertEquals("0x" + Long.toHexString(bar.address()),
                            "0x" + Long.toHexString(got.address()), what + "address"));
                }
                Region config = d.region(Region.CONFIG);
                assertEquals(RegionKind.CONFIG, config.kind(), id + " region 7");
                assertTrue(config.size() >= 256, id + " config size " + config.size());
            }
        }
        assertAll("the lab's BARs", checks);
    }

    @Test
    void everyRegionCanBeListed() throws KernelException {
        for (String id : roles().all()) {
            try (VfioDevice d = kernel.open(id)) {
                List<Region> all = d.regions();
                assertEquals(d.info().numRegions(), all.size(), id);
                assertEquals(RegionKind.CONFIG, all.get(Region.CONFIG).kind(), id);
            }
        }
    }

    @Test
    protected void romAndVgaRegionsAreAbsent() throws Exception {
        for (String id : roles().all()) {
            try (VfioDevice d = kernel.open(id)) {
                for (int i : new int[] {Region.ROM, Region.VGA}) {
                    Region r = d.region(i);
                    assertEquals(0, r.size(), id + " region " + i + " size");
                    assertEquals(RegionKind.ABSENT, r.kind(), id + " region " + i);
                }
            }
        }
    }

    @Test
    void regionInfoPastTheLastRegionIsEinval() throws KernelException {
        try (VfioDevice d = kernel.open(roles().edu())) {
            for (int i : new int[] {Region.NUM_REGIONS, 100}) {
                KernelException e = assertThrows(KernelException.class, () -> d.region(i), "region " + i);
                assertEquals(Ops.GET_REGION_INFO, e.op());
                assertEquals("EINVAL", e.errnoName(), "region " + i);
            }
        }
    }

    @Test
    void manyRangesConcatenate() throws Exception {
        String nvme = roles().nvme();
        int n = 256;
        List<DmaRange> ranges = new ArrayList<>();
        for (int k = 0; k < n; k++) ranges.add(r((long) (n - 1 - k) * 2 * P, P)); // every other page, backwards
        try (VfioDevice d = kernel.open(nvme); DmaBuf b = d.exportDmaBuf(DmaBufRequest.get(2, ranges, OPEN_FLAGS))) {
            assertEquals(n * P, b.size());
            assertEquals(n * P, seekEnd(b.fd()), n + " ranges of one page");
        }
    }

    @Test
    void aClosedDeviceAnswersEbadf() throws Exception {
        MemBar m = memoryBars().get(0);
        VfioDevice d = kernel.open(m.device());
        d.close();
        d.close(); // idempotent
        assertEquals("EBADF", assertThrows(KernelException.class, () -> d.exportDmaBuf(get(m.index(), r(0, P)))).errnoName());
        assertEquals("EBADF", assertThrows(KernelException.class, d::info).errnoName());
    }

    // ---- lifecycle -----------------------------------------------------------------------------------------

    @Test
    void resetWithALiveExportThenExportAgain() throws Exception {
        String nvme = roles().nvme();
        int bar = 2;
        long size = lab.get(nvme).bar(bar).size();
        try (VfioDevice d = kernel.open(nvme)) {
            assertTrue(d.info().resetSupported());
            try (DmaBuf before = d.exportDmaBuf(get(bar, r(0, size)))) {
                d.reset();
                assertEquals(size, seekEnd(before.fd()), "the dma-buf fd stays valid across a reset");
                try (DmaBuf after = d.exportDmaBuf(get(bar, r(0, P)))) {
                    assertEquals(P, seekEnd(after.fd()), "a new export after the reset works");
                }
            }
        }
    }

    @Test
    void resetWithoutAResetMethodIsEinval() throws Exception {
        Roles x = roles();
        for (String id : List.of(x.ivshmem(), x.testdev(), x.edu())) {
            try (VfioDevice d = kernel.open(id)) {
                assertFalse(d.info().resetSupported(), id);
                KernelException e = assertThrows(KernelException.class, d::reset, id);
                assertEquals(Ops.RESET, e.op());
                assertEquals("EINVAL", e.errnoName(), id);
            }
        }
    }

    @Test
    void exportSucceedsWithMemoryDecodingOff(TestReporter report) throws Exception {
        for (MemBar m : memoryBars()) {
            try (VfioDevice d = kernel.open(m.device())) {
                report.publishEntry(m.device() + " memoryEnabled after open", String.valueOf(d.memoryEnabled()));
                d.setMemoryEnabled(false);
                assertFalse(d.memoryEnabled(), m.device() + " PCI_COMMAND.MEMORY cleared");
                try (DmaBuf b = d.exportDmaBuf(get(m.index(), r(0, P)))) {
                    assertEquals(P, seekEnd(b.fd()), "export with memory off succeeds (the buffer starts revoked)");
                    d.setMemoryEnabled(true);
                    assertTrue(d.memoryEnabled(), m.device() + " PCI_COMMAND.MEMORY set again");
                    assertEquals(P, seekEnd(b.fd()));
                }
            }
        }
    }

    @Test
    protected void memoryDecodingIsOnAgainAfterCloseAndReopen() throws Exception {
        // closing restores the PCI state saved at open (vfio_pci_core_disable), so a device closed with memory
        // decoding off opens with it on again
        for (MemBar m : memoryBars()) {
            try (VfioDevice d = kernel.open(m.device())) {
                d.setMemoryEnabled(false);
            }
            try (VfioDevice d = kernel.open(m.device())) {
                assertTrue(d.memoryEnabled(), m.device() + ": memory decoding after close and reopen");
            }
        }
    }

    @Test
    void resetKeepsTheMemoryBit() throws Exception {
        try (VfioDevice d = kernel.open(roles().nvme())) {
            d.setMemoryEnabled(false);
            d.reset();
            assertFalse(d.memoryEnabled(), "memory off stays off across a reset (state is saved and restored)");
            d.setMemoryEnabled(true);
            d.reset();
            assertTrue(d.memoryEnabled(), "memory on stays on across a reset");
        }
    }

    @Test
    void closingTheDeviceLeavesLiveExportsValid() throws Exception {
        for (MemBar m : memoryBars()) {
            DmaBuf b;
            try (VfioDevice d = kernel.open(m.device())) {
                b = d.exportDmaBuf(get(m.index(), r(0, P)));
            }
            try (b) {
                assertEquals(P, seekEnd(b.fd()), m.device() + ": the dma-buf fd outlives the device fd");
            }
            // and the device opens again afterwards
            try (VfioDevice again = kernel.open(m.device()); DmaBuf c = again.exportDmaBuf(get(m.index(), r(0, P)))) {
                assertEquals(P, seekEnd(c.fd()));
            }
        }
    }

    @Test
    void aDmaBufClosesOnce() throws Exception {
        MemBar m = memoryBars().get(0);
        try (VfioDevice d = kernel.open(m.device())) {
            DmaBuf b = d.exportDmaBuf(get(m.index(), r(0, P)));
            assertFalse(b.isClosed());
            b.close();
            assertTrue(b.isClosed());
            b.close(); // a second close must not close whatever fd now has that number
            PosixException e = assertThrows(PosixException.class, () -> seekEnd(b.fd()));
            assertEquals(Errno.EBADF.value, e.errno(), "the fd is closed");
        }
    }

    /**
     * A second open of an open device: the group path hands out another device fd (and a dma-buf exported through
     * it outlives that fd); the cdev path refuses it with EINVAL at {@code VFIO_DEVICE_BIND_IOMMUFD} (vfio_df_open
     * allows one open there), which LinuxKernel reports as a failed open. Either way the first fd is unaffected.
     */
    @Test
    void aSecondOpenOfAnOpenDevice(TestReporter report) throws Exception {
        String edu = roles().edu();
        report.publishEntry("open path", path.name());
        try (VfioDevice first = kernel.open(edu)) {
            switch (path) {
                case CDEV -> {
                    KernelException e = assertThrows(KernelException.class, () -> kernel.open(edu).close(),
                            "a second open of " + edu + " on the cdev path was accepted");
                    report.publishEntry("second open", e.getMessage());
                    assertEquals(Ops.OPEN, e.op());
                    assertEquals("EINVAL", e.errnoName(), e.getMessage());
                }
                case GROUP -> {
                    VfioDevice second = kernel.open(edu);
                    report.publishEntry("second open", "succeeded");
                    try (DmaBuf b = second.exportDmaBuf(get(0, r(0, P)))) {
                        second.close();
                        assertEquals(P, seekEnd(b.fd()), "a dma-buf exported through the second fd outlives it");
                    } finally {
                        second.close();
                    }
                }
            }
            try (DmaBuf b = first.exportDmaBuf(get(0, r(0, P)))) {
                assertEquals(P, seekEnd(b.fd()), "the first fd still exports");
            }
        }
        try (VfioDevice again = kernel.open(edu)) {
            again.probeDmaBuf();
        }
    }

    @Test
    void listsTheLabDevices() {
        List<String> ids = kernel.deviceIds();
        for (String id : roles().all()) assertTrue(ids.contains(id), id + " in " + ids);
        assertNotNull(kernel.name());
    }
}

package org.vfioexport.kernel.sim;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.kernel.DmaBuf;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.kernel.DmaRange;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;
import org.vfioexport.kernel.RegionKind;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.testutil.Conf;
import org.vfioexport.testutil.Fds;

import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.kernel.DmaBufRequest.FEATURE_DMA_BUF;
import static org.vfioexport.kernel.DmaBufRequest.GET;
import static org.vfioexport.kernel.DmaBufRequest.PROBE;
import static org.vfioexport.kernel.DmaBufRequest.SET;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * T10 and T9 of docs/kernel-semantics.md §10: every row of the §2 validation table, and the §12 precedence cases.
 */
class SimValidationTest {
    private static final long PG = 4096, MiB = 1 << 20;
    private SimKernel kernel;
    private VfioDevice nvme, gpu;

    @BeforeEach
    void open() throws KernelException {
        kernel = Conf.defaultSim();
        nvme = kernel.open(NVME);
        gpu = kernel.open(GPU);
    }

    @AfterEach
    void close() {
        kernel.close();
    }

    private static DmaBufRequest get(int region, long offset, long length) {
        return DmaBufRequest.get(region, offset, length);
    }

    private static DmaBufRequest get(int region, DmaRange... ranges) {
        return DmaBufRequest.get(region, List.of(ranges), DmaBufRequest.O_RDWR | DmaBufRequest.O_CLOEXEC);
    }

    private static DmaRange r(long offset, long length) {
        return new DmaRange(offset, length);
    }

    static Stream<Arguments> rejected() {
        DmaBufRequest ok = get(2, 0, PG);
        return Stream.of(
                Arguments.of("row 2: argsz < 8", NVME, ok.withArgsz(4), Errno.EINVAL),
                Arguments.of("row 3: unknown flag bit", NVME, ok.withFeatureFlags(GET | FEATURE_DMA_BUF | 0x80000), Errno.EINVAL),
                Arguments.of("row 4: GET and SET without PROBE", NVME, ok.withFeatureFlags(GET | SET | FEATURE_DMA_BUF), Errno.EINVAL),
                Arguments.of("row 7: SET", NVME, ok.withFeatureFlags(SET | FEATURE_DMA_BUF), Errno.EINVAL),
                Arguments.of("row 7: PROBE|SET", NVME, ok.withFeatureFlags(PROBE | SET | FEATURE_DMA_BUF), Errno.EINVAL),
                Arguments.of("row 9: neither GET nor SET", NVME, ok.withFeatureFlags(FEATURE_DMA_BUF), Errno.EINVAL),
                Arguments.of("row 10: argsz of the header only", NVME, ok.withArgsz(8), Errno.EINVAL),
                Arguments.of("row 10: argsz short of the body", NVME, ok.withArgsz(8 + 8), Errno.EINVAL),
                Arguments.of("row 12: nr_ranges 0", NVME, get(2).withNrRanges(0), Errno.EINVAL),
                Arguments.of("row 12: flags 1", NVME, ok.withFlags(1), Errno.EINVAL),
                Arguments.of("row 12: flags 0x80000000", NVME, ok.withFlags(0x80000000), Errno.EINVAL),
                Arguments.of("row 13: region 6 (ROM)", NVME, get(6, 0, PG), Errno.ENODEV),
                Arguments.of("row 13: region 7 (CONFIG)", NVME, get(7, 0, PG), Errno.ENODEV),
                Arguments.of("row 13: region 100", NVME, get(100, 0, PG), Errno.ENODEV),
                Arguments.of("row 13: region 0xffffffff", NVME, get(-1, 0, PG), Errno.ENODEV),
                Arguments.of("row 13: absent BAR4", GPU, get(4, 0, PG), Errno.ENODEV),
                Arguments.of("row 14: nr_ranges 100000, one supplied", NVME, ok.withNrRanges(100_000), Errno.EFAULT),
                Arguments.of("row 14: nr_ranges beyond the kmalloc cap", NVME, ok.withNrRanges(300_000), Errno.ENOMEM),
                Arguments.of("row 15: unaligned offset", NVME, get(2, 1, PG), Errno.EINVAL),
                Arguments.of("row 15: unaligned length", NVME, get(2, 0, PG + 1), Errno.EINVAL),
                Arguments.of("row 15: zero length", NVME, get(2, 0, 0), Errno.EINVAL),
                Arguments.of("row 15: sum of lengths overflows", GPU, get(2, r(0, 1L << 63), r(0, 1L << 63)), Errno.EINVAL),
                Arguments.of("row 15: size has bit 63", GPU, get(2, 0, 1L << 63), Errno.EINVAL),
                Arguments.of("row 17: I/O-port BAR", GPU, get(5, 0, PG), Errno.EINVAL),
                Arguments.of("row 18: offset+length wraps u64", NVME, get(2, -PG, 2 * PG), Errno.EOVERFLOW),
                Arguments.of("row 19: past the BAR", NVME, get(2, 0, 64 * MiB + PG), Errno.EINVAL),
                Arguments.of("row 19: offset = BAR size", NVME, get(0, 16 * 1024, PG), Errno.EINVAL),
                Arguments.of("§12: nr_ranges 0 on an absent BAR (count first)", GPU, get(4).withNrRanges(0), Errno.EINVAL),
                Arguments.of("§12: absent BAR, unaligned offset (BAR first)", GPU, get(4, 1, PG), Errno.ENODEV),
                Arguments.of("§12: absent BAR, zero length", GPU, get(4, 0, 0), Errno.ENODEV),
                Arguments.of("§12: region 6, unaligned offset", NVME, get(6, 1, PG), Errno.ENODEV),
                Arguments.of("§12: I/O BAR, unaligned offset", GPU, get(5, 1, PG), Errno.EINVAL),
                Arguments.of("§12: I/O BAR, past its end", GPU, get(5, 0, 2 * PG), Errno.EINVAL),
                Arguments.of("§12: offset 2^64-page, unaligned length (alignment first)", NVME, get(2, -PG, PG + 1), Errno.EINVAL),
                Arguments.of("§12: offset 2^63", NVME, get(2, 1L << 63, PG), Errno.EINVAL),
                Arguments.of("§12: second range unaligned", NVME, get(2, r(0, PG), r(PG, 100)), Errno.EINVAL),
                Arguments.of("§12: second range past the end", NVME, get(0, r(0, PG), r(16 * 1024, PG)), Errno.EINVAL));
    }

    @ParameterizedTest(name = "T10 {0} -> {3}")
    @MethodSource("rejected")
    void t10RejectsWithTheKernelsErrno(String row, String device, DmaBufRequest req, Errno expected) {
        VfioDevice d = device.equals(NVME) ? nvme : gpu;
        long fds = Fds.open();
        KernelException e = assertThrows(KernelException.class, () -> d.featureDmaBuf(req), row);
        assertEquals(expected.name(), e.errnoName(), row + ": " + e.getMessage());
        assertEquals(Ops.FEATURE_DMA_BUF, e.op());
        assertEquals(fds, Fds.open(), row + " leaked an fd");
        assertEquals(0, kernel.device(device).listed().size(), row + " left a dma-buf on the list");
    }

    @Test
    @DisplayName("T10 row 19 against a sub-page memory BAR (ivshmem-like 256 B BAR0): EINVAL")
    void subPageMemoryBar() throws KernelException {
        SimKernel k = new SimKernel(List.of(new SimDeviceSpec("0000:00:04.0", "ivshmem", false, true, false,
                List.of(new SimRegionSpec(0, RegionKind.MMIO, 256, false)))), SimSemantics.V6_19, true);
        try (k) {
            VfioDevice d = k.open("0000:00:04.0");
            assertEquals(Errno.EINVAL.value, assertThrows(KernelException.class, () -> d.exportDmaBuf(get(0, 0, PG))).errno());
        }
    }

    @Test
    @DisplayName("T9 PROBE answers 0 and creates no fd")
    void t9ProbeAnswersZero() throws KernelException {
        long fds = Fds.open();
        assertNull(nvme.featureDmaBuf(DmaBufRequest.probe()));
        nvme.probeDmaBuf();
        assertNull(nvme.featureDmaBuf(DmaBufRequest.probe().withFeatureFlags(PROBE | FEATURE_DMA_BUF)), "PROBE alone");
        assertEquals(fds, Fds.open());
    }

    @Test
    @DisplayName("T9 a variant driver answers EOPNOTSUPP even for PROBE; a kernel without the feature ENOTTY")
    void t9VariantDriverAndMissingFeature() throws KernelException {
        SimKernel k = new SimKernel(List.of(
                new SimDeviceSpec("0000:03:00.0", "variant", true, true, true, List.of(new SimRegionSpec(0, RegionKind.MMIO, MiB, false))),
                new SimDeviceSpec("0000:04:00.0", "old kernel", true, false, false, List.of(new SimRegionSpec(0, RegionKind.MMIO, MiB, false)))),
                SimSemantics.V6_19, true);
        try (k) {
            VfioDevice variant = k.open("0000:03:00.0"), old = k.open("0000:04:00.0");
            assertEquals(Errno.EOPNOTSUPP.value, assertThrows(KernelException.class, variant::probeDmaBuf).errno());
            assertEquals(Errno.EOPNOTSUPP.value, assertThrows(KernelException.class, () -> variant.exportDmaBuf(get(0, 0, PG))).errno());
            assertEquals(Errno.ENOTTY.value, assertThrows(KernelException.class, old::probeDmaBuf).errno());
        }
    }

    @Test
    @DisplayName("accepted: the fd is a real file of exactly the sum of the lengths; overlaps and open_flags pass")
    void acceptedSizes() throws Exception {
        assertSize(gpu, get(2, 0, 256 * MiB), 256 * MiB);
        assertSize(nvme, get(2, r(0, 2 * PG), r(PG, PG)), 3 * PG);                  // overlapping, kernel: 12288
        assertSize(nvme, get(2, r(0, PG), r(3 * PG, PG)), 2 * PG);
        assertSize(nvme, get(2, 0, PG).withNrRanges(1), PG);
        DmaBufRequest dir = DmaBufRequest.get(2, List.of(r(0, PG)), Posix.O_DIRECTORY | Posix.O_CLOEXEC);
        assertSize(nvme, dir, PG);                                                   // open_flags not validated (accmode O_RDONLY)
        assertSize(nvme, get(0, 12 * 1024, 4 * 1024), PG);                           // last page of BAR0
    }

    private void assertSize(VfioDevice d, DmaBufRequest req, long size) throws Exception {
        try (DmaBuf b = d.exportDmaBuf(req)) {
            assertTrue(b.fd() > 0);
            assertEquals(size, b.size());
            assertEquals(size, Posix.lseek(b.fd(), 0, Posix.SEEK_END), "lseek(SEEK_END) is the dma-buf size");
            assertTrue(Posix.readlink("/proc/self/fd/" + b.fd()).startsWith("/memfd:vfio-dmabuf:"));
            PosixException sealed = assertThrows(PosixException.class, () -> Posix.ftruncate(b.fd(), size * 2));
            boolean writable = (Posix.fcntl(b.fd(), 3 /* F_GETFL */, 0) & 3) == Posix.O_RDWR;
            // sealed against resizing; a read-only fd (open_flags without O_RDWR) cannot even try
            assertEquals(writable ? Errno.EPERM.value : Errno.EINVAL.value, sealed.errno());
        }
    }

    @Test
    @DisplayName("a read-only request gives a read-only fd")
    void readOnlyFd() throws Exception {
        try (DmaBuf b = nvme.exportDmaBuf(DmaBufRequest.get(2, List.of(r(0, PG)), Posix.O_RDONLY | Posix.O_CLOEXEC))) {
            int flags = Posix.fcntl(b.fd(), 3 /* F_GETFL */, 0);
            assertEquals(Posix.O_RDONLY, flags & 3);
        }
    }

    @Test
    @DisplayName("region info: BARs, absent BARs, I/O, config; reset flag per device")
    void regionInfo() throws KernelException {
        assertEquals(64 * MiB, nvme.region(2).size());
        assertTrue(nvme.region(2).prefetchable());
        assertEquals(RegionKind.ABSENT, gpu.region(4).kind());
        assertEquals(0, gpu.region(4).size());
        assertEquals(RegionKind.IO, gpu.region(5).kind());
        assertFalse(gpu.region(5).mmap());
        assertEquals(RegionKind.CONFIG, gpu.region(7).kind());
        assertEquals(7L << 40, gpu.region(7).offset());
        assertEquals(9, nvme.regions().size());
        assertTrue(nvme.info().resetSupported());
        assertFalse(gpu.info().resetSupported());
        assertEquals(Errno.EINVAL.value, assertThrows(KernelException.class, () -> nvme.region(9)).errno());
    }
}

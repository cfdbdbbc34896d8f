package org.vfioexport.kernel.sim;

import org.junit.jupiter.api.Test;
import org.vfioexport.kernel.DmaBufRequest;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Region;
import org.vfioexport.kernel.RegionKind;
import org.vfioexport.kernel.VfioDevice;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Where the simulated kernel puts BARs, and the EINVAL/EOVERFLOW line near 2^64 that follows from it. */
class BarPlacementTest {
    private static final long P = 4096;

    private static SimDeviceSpec device(String id, SimRegionSpec... bars) {
        return new SimDeviceSpec(id, id, false, true, false, List.of(bars), 0);
    }

    private static Map<String, Object> bar(int index, String kind, long size, Boolean prefetchable, Long address) {
        Map<String, Object> m = new java.util.HashMap<>(Map.of("index", index, "kind", kind, "size", size));
        if (prefetchable != null) m.put("prefetchable", prefetchable);
        if (address != null) m.put("address", address);
        return m;
    }

    private static SimDeviceSpec fromMap(Map<String, Object> bar) {
        return SimDeviceSpec.fromMap(Map.of("id", "0000:00:01.0", "regions", List.of(bar)));
    }

    @Test
    void firmwareLikeDefaults() {
        List<SimDeviceSpec> placed = BarPlacement.place(List.of(
                device("0000:01:00.0", new SimRegionSpec(0, RegionKind.MMIO, 16 * 1024, false),
                        new SimRegionSpec(2, RegionKind.MMIO, 64L << 20, true)),
                device("0000:02:00.0", new SimRegionSpec(0, RegionKind.MMIO, 16L << 20, false),
                        new SimRegionSpec(2, RegionKind.MMIO, 256L << 20, true),
                        new SimRegionSpec(5, RegionKind.IO, 128, false))));
        List<SimRegionSpec> all = new ArrayList<>();
        for (SimDeviceSpec d : placed) all.addAll(d.regions());
        for (SimRegionSpec r : all) {
            String what = "BAR" + r.index() + " at 0x" + Long.toHexString(r.address());
            assertTrue(r.placed(), what);
            assertEquals(0, r.address() & (r.size() - 1), what + " is naturally aligned");
            switch (r.kind()) {
                case IO -> assertTrue(r.address() >= 0xc000 && r.end() <= 0x10000, what + " in the port space");
                case MMIO -> {
                    if (r.prefetchable()) assertTrue(r.address() >= 1L << 39, what + " in the 64-bit window");
                    else assertTrue(r.address() >= 0xc000_0000L && r.end() <= 0xfec0_0000L, what + " below the IOAPIC");
                }
                default -> throw new AssertionError(what);
            }
        }
        for (int i = 0; i < all.size(); i++) {
            for (int j = i + 1; j < all.size(); j++) {
                SimRegionSpec a = all.get(i), b = all.get(j);
                if ((a.kind() == RegionKind.IO) != (b.kind() == RegionKind.IO)) continue;
                assertTrue(a.end() <= b.address() || b.end() <= a.address(), a + " overlaps " + b);
            }
        }
        // top down below the IOAPIC, largest first: the 16 MiB BAR right under 0xfec00000's 16 MiB boundary
        assertEquals(0xfd00_0000L, placed.get(1).bar(0).address());
        assertEquals(1L << 39, placed.get(1).bar(2).address());
    }

    @Test
    void configuredAddressesAreKeptAndAvoided() {
        List<SimDeviceSpec> placed = BarPlacement.place(List.of(
                device("0000:01:00.0", new SimRegionSpec(0, RegionKind.MMIO, 1L << 20, false, 0xfeb0_0000L)),
                device("0000:02:00.0", new SimRegionSpec(0, RegionKind.MMIO, 1L << 20, false))));
        assertEquals(0xfeb0_0000L, placed.get(0).bar(0).address());
        long other = placed.get(1).bar(0).address();
        assertTrue(other + (1L << 20) <= 0xfeb0_0000L || other >= 0xfec0_0000L, Long.toHexString(other));
    }

    @Test
    void configuredAddressesAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> BarPlacement.place(List.of(
                device("0000:01:00.0", new SimRegionSpec(0, RegionKind.MMIO, 1L << 20, false, 0xfeb0_1000L)))),
                "not aligned to its size");
        assertThrows(IllegalArgumentException.class, () -> BarPlacement.place(List.of(
                device("0000:01:00.0", new SimRegionSpec(0, RegionKind.MMIO, P, false, 0xfeb0_0000L)),
                device("0000:02:00.0", new SimRegionSpec(0, RegionKind.MMIO, 2 * P, false, 0xfeb0_0000L)))),
                "overlap");
        assertThrows(IllegalArgumentException.class, () -> BarPlacement.place(List.of(
                device("0000:01:00.0", new SimRegionSpec(1, RegionKind.IO, 256, false, 0x1_0000L)))),
                "past the port space");
        assertThrows(IllegalArgumentException.class, () -> fromMap(bar(0, "mmio", P, null, -4096L)));
        assertThrows(IllegalArgumentException.class, () -> fromMap(Map.of("index", 0, "kind", "mmio", "size", P,
                "address", 4096.5)));
        assertEquals(0xfd00_0000L, fromMap(bar(2, "mmio", 1L << 24, true, 0xfd00_0000L)).bar(2).address());
    }

    /** vfio_pci_core_fill_phys_vec's check, on one BAR below 4 GiB and one at 2^39. */
    @Test
    void theOverflowCheckUsesTheBarAddress() throws KernelException {
        long low = 0xfd00_0000L, high = 0x80_0000_0000L; // below 4 GiB as in the lab; at 2^39 as OVMF's window
        SimKernel k = new SimKernel(List.of(
                device("0000:01:00.0", new SimRegionSpec(2, RegionKind.MMIO, 1L << 24, true, low)),
                device("0000:02:00.0", new SimRegionSpec(2, RegionKind.MMIO, 1L << 24, true, high))),
                SimSemantics.V7_1, true);
        try (VfioDevice a = k.open("0000:01:00.0"); VfioDevice b = k.open("0000:02:00.0")) {
            Region ra = a.region(2), rb = b.region(2);
            assertEquals(low, ra.address());
            assertEquals(high, rb.address());
            for (int kk = 32; kk <= 39; kk++) {
                long offset = -(1L << kk);
                // low + 2^64 - 2^k + page never wraps for k >= 32; high (2^39) wraps for every k <= 39
                assertEquals(Errno.EINVAL.name(), refused(a, offset), "below 4 GiB, 2^64 - 2^" + kk);
                assertEquals(Errno.EOVERFLOW.name(), refused(b, offset), "at 2^39, 2^64 - 2^" + kk);
            }
            assertEquals(Errno.EOVERFLOW.name(), refused(a, -low), "start + offset = 2^64 wraps");
            assertEquals(Errno.EOVERFLOW.name(), refused(a, -low - P), "start + offset + length = 2^64 wraps");
            assertEquals(Errno.EINVAL.name(), refused(a, -low - 2 * P), "ends one page below 2^64: only past the BAR");
        } finally {
            k.close();
        }
    }

    private static String refused(VfioDevice d, long offset) {
        return assertThrows(KernelException.class, () -> d.exportDmaBuf(DmaBufRequest.get(2, offset, P)).close())
                .errnoName();
    }
}

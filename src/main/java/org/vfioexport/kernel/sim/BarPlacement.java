package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.RegionKind;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Gives every BAR without a configured address one, as PC firmware (SeaBIOS, OVMF) assigns them: I/O BARs in the
 * port space from 0xc000 up; non-prefetchable memory BARs in the 32-bit window below the IOAPIC at 0xfec00000, top
 * down, as a 32-bit BAR must sit below 4 GiB; prefetchable memory BARs in a 64-bit window from 2^39 (512 GiB, where
 * OVMF opens its 64-bit aperture) up. Each BAR is naturally aligned (its size is a power of two), larger BARs are
 * placed first so they pack, and nothing overlaps a configured address or another BAR of its space. Configured
 * addresses are checked the same way: aligned, inside their space, not overlapping.
 *
 * <p>Where a BAR sits decides one errno: the kernel refuses a dma-buf range whose BAR start + offset wraps 64 bits
 * with EOVERFLOW, one that merely runs past the BAR with EINVAL.
 */
final class BarPlacement {
    static final long IO_BASE = 0xc000, IO_LIMIT = 0x1_0000;
    static final long MEM32_BASE = 0xc000_0000L, MEM32_LIMIT = 0xfec0_0000L;
    static final long MEM64_BASE = 1L << 39;

    private BarPlacement() {}

    private record Slot(String device, SimRegionSpec bar) {}

    private enum Space { IO, MEM32, MEM64 }

    private static Space space(SimRegionSpec r) {
        if (r.kind() == RegionKind.IO) return Space.IO;
        return r.prefetchable() ? Space.MEM64 : Space.MEM32;
    }

    /** The same devices, each BAR with an address; IllegalArgumentException for a configured address that cannot be. */
    static List<SimDeviceSpec> place(List<SimDeviceSpec> devices) {
        List<List<Slot>> taken = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        List<Slot> pending = new ArrayList<>();
        for (SimDeviceSpec d : devices) {
            for (SimRegionSpec r : d.regions()) {
                if (!r.placed()) {
                    pending.add(new Slot(d.id(), r));
                    continue;
                }
                check(d.id(), r);
                for (Space s : Space.values()) {
                    for (Slot t : taken.get(s.ordinal())) {
                        if (sameSpace(r, t.bar()) && overlaps(r.address(), r.size(), t.bar())) {
                            throw new IllegalArgumentException(d.id() + ": BAR" + r.index() + " at 0x"
                                    + Long.toHexString(r.address()) + " overlaps " + t.device() + " BAR" + t.bar().index());
                        }
                    }
                }
                taken.get(space(r).ordinal()).add(new Slot(d.id(), r));
            }
        }
        pending.sort(Comparator.comparingLong((Slot s) -> s.bar().size()).reversed());
        java.util.Map<String, java.util.Map<Integer, Long>> assigned = new java.util.HashMap<>();
        for (Slot p : pending) {
            SimRegionSpec r = p.bar();
            Space s = space(r);
            long at = switch (s) {
                case IO -> upward(IO_BASE, IO_LIMIT, r.size(), taken, p);
                case MEM32 -> downward(MEM32_BASE, MEM32_LIMIT, r.size(), taken, p);
                case MEM64 -> upward(MEM64_BASE, -1L, r.size(), taken, p);
            };
            taken.get(s.ordinal()).add(new Slot(p.device(), r.at(at)));
            assigned.computeIfAbsent(p.device(), k -> new java.util.HashMap<>()).put(r.index(), at);
        }
        List<SimDeviceSpec> out = new ArrayList<>();
        for (SimDeviceSpec d : devices) {
            java.util.Map<Integer, Long> a = assigned.getOrDefault(d.id(), java.util.Map.of());
            List<SimRegionSpec> regions = new ArrayList<>();
            for (SimRegionSpec r : d.regions()) regions.add(r.placed() ? r : r.at(a.get(r.index())));
            out.add(d.withRegions(regions));
        }
        return out;
    }

    private static void check(String id, SimRegionSpec r) {
        String what = id + ": BAR" + r.index() + " address 0x" + Long.toHexString(r.address());
        if ((r.address() & (r.size() - 1)) != 0) {
            throw new IllegalArgumentException(what + " is not aligned to its size 0x" + Long.toHexString(r.size()));
        }
        if (Long.compareUnsigned(r.address() + r.size(), r.address()) < 0 && r.address() + r.size() != 0) {
            throw new IllegalArgumentException(what + " runs past 2^64");
        }
        if (r.kind() == RegionKind.IO && Long.compareUnsigned(r.end(), IO_LIMIT) > 0) {
            throw new IllegalArgumentException(what + " is past the 64 KiB I/O port space");
        }
        if (r.kind() == RegionKind.MMIO && r.address() == 0) {
            throw new IllegalArgumentException(what + ": address 0 means unassigned");
        }
    }

    private static boolean sameSpace(SimRegionSpec a, SimRegionSpec b) {
        return (a.kind() == RegionKind.IO) == (b.kind() == RegionKind.IO);
    }

    /** Whether [at, at + size) meets {@code b} (unsigned; a BAR ending at 2^64 has end 0). */
    private static boolean overlaps(long at, long size, SimRegionSpec b) {
        long lastA = at + size - 1, lastB = b.address() + b.size() - 1;
        return Long.compareUnsigned(at, lastB) <= 0 && Long.compareUnsigned(b.address(), lastA) <= 0;
    }

    private static SimRegionSpec conflict(long at, long size, SimRegionSpec bar, List<List<Slot>> taken) {
        for (List<Slot> l : taken) {
            for (Slot t : l) if (sameSpace(bar, t.bar()) && overlaps(at, size, t.bar())) return t.bar();
        }
        return null;
    }

    /** The lowest aligned free slot at or above {@code base}; {@code limit} -1 means up to 2^64. */
    private static long upward(long base, long limit, long size, List<List<Slot>> taken, Slot p) {
        long at = alignUp(base, size);
        while (true) {
            if (limit != -1 && Long.compareUnsigned(at + size, limit) > 0 || Long.compareUnsigned(at, base) < 0) {
                throw new IllegalArgumentException(p.device() + ": no room for BAR" + p.bar().index() + " (0x"
                        + Long.toHexString(size) + " bytes)");
            }
            SimRegionSpec c = conflict(at, size, p.bar(), taken);
            if (c == null) return at;
            at = alignUp(c.address() + c.size(), size);
        }
    }

    /** The highest aligned free slot ending at or below {@code limit} and starting at or above {@code base}. */
    private static long downward(long base, long limit, long size, List<List<Slot>> taken, Slot p) {
        long at = (limit - size) & -size;
        while (true) {
            if (at < base) {
                throw new IllegalArgumentException(p.device() + ": no room below 4 GiB for BAR" + p.bar().index()
                        + " (0x" + Long.toHexString(size) + " bytes); make it prefetchable or give it an address");
            }
            SimRegionSpec c = conflict(at, size, p.bar(), taken);
            if (c == null) return at;
            at = (c.address() - size) & -size;
        }
    }

    private static long alignUp(long v, long align) {
        return (v + align - 1) & -align;
    }
}

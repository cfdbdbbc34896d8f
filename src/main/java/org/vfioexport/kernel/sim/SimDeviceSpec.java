package org.vfioexport.kernel.sim;

import org.vfioexport.kernel.RegionKind;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A simulated device, from configuration.
 *
 * @param resetMethod      whether the function has a reset method (VFIO_DEVICE_FLAGS_RESET)
 * @param dmabufSupported  false models a kernel built without CONFIG_VFIO_PCI_DMABUF (ENOTTY)
 * @param variantDriver    true models a variant driver without {@code get_dmabuf_phys} (EOPNOTSUPP, even for PROBE)
 * @param resetMillis      how long {@code VFIO_DEVICE_RESET} holds the device once it has begun the reset (the
 *                         reset method's own wait: 100 ms for an FLR, as {@code pcie_flr} waits); 0 for tests
 */
public record SimDeviceSpec(String id, String name, boolean resetMethod, boolean dmabufSupported,
                            boolean variantDriver, List<SimRegionSpec> regions, long resetMillis) {
    /**
     * What a function-level reset waits on hardware: {@code pcie_flr} sleeps 100 ms after initiating the FLR
     * (PCIe r6.0 sec 6.6.2: software must wait 100 ms before the function is ready again).
     */
    public static final long FLR_MILLIS = 100;

    public SimDeviceSpec {
        regions = List.copyOf(regions);
        if (resetMillis < 0) throw new IllegalArgumentException(id + ": reset_ms must be >= 0, got " + resetMillis);
    }

    /** A device whose reset method (if any) takes as long as an FLR. */
    public SimDeviceSpec(String id, String name, boolean resetMethod, boolean dmabufSupported, boolean variantDriver,
                         List<SimRegionSpec> regions) {
        this(id, name, resetMethod, dmabufSupported, variantDriver, regions, resetMethod ? FLR_MILLIS : 0);
    }

    /** The same device with a reset that takes {@code millis} (tests that reset a lot use 0). */
    public SimDeviceSpec withResetMillis(long millis) {
        return new SimDeviceSpec(id, name, resetMethod, dmabufSupported, variantDriver, regions, millis);
    }

    /** The same device with these regions (the placement gives each BAR its address). */
    public SimDeviceSpec withRegions(List<SimRegionSpec> r) {
        return new SimDeviceSpec(id, name, resetMethod, dmabufSupported, variantDriver, r, resetMillis);
    }

    public SimRegionSpec bar(int index) {
        for (SimRegionSpec r : regions) if (r.index() == index) return r;
        return null;
    }

    /** Reads one entry of the configuration's {@code devices} list. */
    @SuppressWarnings("unchecked")
    public static SimDeviceSpec fromMap(Map<String, Object> m) {
        String id = (String) m.get("id");
        if (id == null || !id.matches("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]")) {
            throw new IllegalArgumentException("device id must be a PCI address DDDD:BB:DD.F, got " + id);
        }
        List<SimRegionSpec> regions = new ArrayList<>();
        for (Object o : (List<Object>) m.getOrDefault("regions", List.of())) {
            Map<String, Object> r = (Map<String, Object>) o;
            int index = ((Number) r.get("index")).intValue();
            if (index < 0 || index > 5) throw new IllegalArgumentException(id + ": BAR index must be 0..5, got " + index);
            RegionKind kind = switch ((String) r.getOrDefault("kind", "mmio")) {
                case "mmio" -> RegionKind.MMIO;
                case "io" -> RegionKind.IO;
                default -> throw new IllegalArgumentException(id + ": region kind must be mmio or io");
            };
            long size = ((Number) r.get("size")).longValue();
            if (size <= 0 || Long.bitCount(size) != 1) {
                throw new IllegalArgumentException(id + ": BAR" + index + " size must be a power of two, got " + size);
            }
            long address = SimRegionSpec.UNPLACED;
            if (r.get("address") != null) {
                if (!(r.get("address") instanceof Number a) || a instanceof Double || a instanceof Float || a.longValue() < 0
                        || a instanceof java.math.BigInteger) {
                    throw new IllegalArgumentException(id + ": BAR" + index + " address must be a whole number from 0 to"
                            + " 2^63-1, got " + r.get("address"));
                }
                address = a.longValue();
            }
            regions.add(new SimRegionSpec(index, kind, size, Boolean.TRUE.equals(r.get("prefetchable")), address));
        }
        boolean reset = Boolean.TRUE.equals(m.get("reset"));
        long resetMillis = reset ? FLR_MILLIS : 0;
        if (m.get("reset_ms") != null) {
            if (!(m.get("reset_ms") instanceof Number n) || n.doubleValue() != n.longValue() || n.longValue() < 0) {
                throw new IllegalArgumentException(id + ": reset_ms must be a whole number of milliseconds >= 0, got "
                        + m.get("reset_ms"));
            }
            if (!reset) throw new IllegalArgumentException(id + ": reset_ms is given but the device has no reset method");
            resetMillis = n.longValue();
        }
        return new SimDeviceSpec(id, (String) m.getOrDefault("name", id), reset,
                !Boolean.FALSE.equals(m.get("dmabuf")), Boolean.TRUE.equals(m.get("variant_driver")), regions,
                resetMillis);
    }
}

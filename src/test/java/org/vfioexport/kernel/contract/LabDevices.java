package org.vfioexport.kernel.contract;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.vfioexport.kernel.RegionKind;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code conf/vmlab-devices.json}: the four emulated devices of the VM lab, as the simulated kernel is configured
 * and as the real kernel must report them. The contract takes its expected BAR sizes, kinds and addresses from here.
 */
record LabDevices(Map<String, Device> byId) {
    /** @param address the BAR's bus address as the lab guest's sysfs {@code resource} shows it */
    record Bar(int index, RegionKind kind, long size, boolean prefetchable, long address) {}

    record Device(String id, String name, boolean reset, Map<Integer, Bar> bars) {
        /** BAR {@code index}, or an absent one (size 0) when the file does not list it. */
        Bar bar(int index) {
            return bars.getOrDefault(index, new Bar(index, RegionKind.ABSENT, 0, false, 0));
        }
    }

    public static Path file() {
        return Path.of(System.getProperty("vfioexport.home", ".")).resolve("conf/vmlab-devices.json");
    }

    static LabDevices load() {
        try {
            JsonNode root = new ObjectMapper().readTree(file().toFile());
            Map<String, Device> out = new TreeMap<>();
            for (JsonNode d : root.get("devices")) {
                Map<Integer, Bar> bars = new TreeMap<>();
                for (JsonNode r : d.get("regions")) {
                    RegionKind kind = switch (r.get("kind").asText()) {
                        case "mmio" -> RegionKind.MMIO;
                        case "io" -> RegionKind.IO;
                        default -> throw new IllegalArgumentException("kind " + r.get("kind"));
                    };
                    bars.put(r.get("index").asInt(), new Bar(r.get("index").asInt(), kind, r.get("size").asLong(),
                            r.path("prefetchable").asBoolean(false), r.path("address").asLong(0)));
                }
                String id = d.get("id").asText();
                out.put(id, new Device(id, d.get("name").asText(), d.get("reset").asBoolean(), bars));
            }
            return new LabDevices(out);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + file().toAbsolutePath(), e);
        }
    }

    Device get(String id) {
        Device d = byId.get(id);
        if (d == null) throw new IllegalArgumentException(id + " is not in " + file());
        return d;
    }

    List<String> ids() {
        return new ArrayList<>(byId.keySet());
    }
}

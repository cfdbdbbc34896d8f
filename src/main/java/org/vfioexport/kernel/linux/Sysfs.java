package org.vfioexport.kernel.linux;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** What sysfs says about PCI devices and vfio-pci. */
final class Sysfs {
    static final Pattern PCI_ADDRESS = Pattern.compile("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");

    private final Path pciDevices;
    private final Path vfioPciDriver;

    Sysfs(Path sysBusPci) {
        this.pciDevices = sysBusPci.resolve("devices");
        this.vfioPciDriver = sysBusPci.resolve("drivers/vfio-pci");
    }

    /** The devices bound to vfio-pci, sorted. */
    List<String> vfioPciDevices() {
        List<String> out = new ArrayList<>();
        if (!Files.isDirectory(vfioPciDriver)) return out;
        try (Stream<Path> s = Files.list(vfioPciDriver)) {
            s.map(p -> p.getFileName().toString()).filter(n -> PCI_ADDRESS.matcher(n).matches()).sorted().forEach(out::add);
        } catch (IOException e) {
            return out;
        }
        return out;
    }

    boolean exists(String id) {
        return Files.isDirectory(pciDevices.resolve(id));
    }

    /** The bound driver's name, if any. */
    Optional<String> driver(String id) {
        return linkName(pciDevices.resolve(id).resolve("driver"));
    }

    /** The IOMMU group number. */
    Optional<String> iommuGroup(String id) {
        return linkName(pciDevices.resolve(id).resolve("iommu_group"));
    }

    /** The device cdev name ({@code vfioN}) under {@code vfio-dev/}, present with CONFIG_VFIO_DEVICE_CDEV. */
    Optional<String> vfioCdev(String id) {
        Path d = pciDevices.resolve(id).resolve("vfio-dev");
        if (!Files.isDirectory(d)) return Optional.empty();
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("vfio")).findFirst();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Lines of {@code resource} read: BAR0..BAR5 and the ROM (resource 6). */
    static final int RESOURCES = 7;

    /**
     * The start of each of BAR0..BAR5 and the ROM as sysfs {@code resource} prints them ({@code pci_resource_start},
     * three hex columns start, end, flags per resource); 0 for an unassigned resource or when the file cannot be
     * read or parsed (a device without sysfs, a test tree without the file).
     */
    long[] resourceStarts(String id) {
        long[] out = new long[RESOURCES];
        List<String> lines;
        try {
            lines = Files.readAllLines(pciDevices.resolve(id).resolve("resource"));
        } catch (IOException | UncheckedIOException e) {
            return out;
        }
        for (int i = 0; i < RESOURCES && i < lines.size(); i++) {
            String[] cols = lines.get(i).trim().split("\\s+");
            if (cols.length < 1 || !cols[0].startsWith("0x")) continue;
            try {
                out[i] = Long.parseUnsignedLong(cols[0].substring(2), 16);
            } catch (NumberFormatException e) {
                out[i] = 0;
            }
        }
        return out;
    }

    private static Optional<String> linkName(Path link) {
        try {
            return Optional.of(Files.readSymbolicLink(link).getFileName().toString());
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
    }
}

package org.vfioexport.kernel.linux;

import java.io.IOException;
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

    private static Optional<String> linkName(Path link) {
        try {
            return Optional.of(Files.readSymbolicLink(link).getFileName().toString());
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
    }
}

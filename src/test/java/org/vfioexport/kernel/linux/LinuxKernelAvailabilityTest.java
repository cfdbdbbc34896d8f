package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.kernel.KernelException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How the Linux backend explains itself where it cannot run, against fake /dev and sysfs trees. */
class LinuxKernelAvailabilityTest {
    @TempDir
    Path root;

    private LinuxKernel kernel(List<String> ids) {
        return new LinuxKernel(root.resolve("dev"), root.resolve("sys/bus/pci"), ids);
    }

    @Test
    void withoutDevVfioItSaysSo() {
        LinuxKernel k = kernel(null);
        assertFalse(k.isAvailable());
        assertTrue(k.unavailabilityCause().contains("vfio"), k.unavailabilityCause());
    }

    @Test
    void withAContainerNodeItIsAvailable() throws Exception {
        Files.createDirectories(root.resolve("dev/vfio"));
        Files.createFile(root.resolve("dev/vfio/vfio"));
        LinuxKernel k = kernel(null);
        assertNull(k.unavailabilityCause());
        assertTrue(k.isAvailable());
    }

    @Test
    void discoversDevicesBoundToVfioPci() throws Exception {
        Path driver = Files.createDirectories(root.resolve("sys/bus/pci/drivers/vfio-pci"));
        Files.createDirectories(driver.resolve("0000:00:06.0"));
        Files.createDirectories(driver.resolve("0000:00:04.0"));
        Files.createFile(driver.resolve("bind"));
        Files.createFile(driver.resolve("new_id"));
        assertEquals(List.of("0000:00:04.0", "0000:00:06.0"), kernel(null).deviceIds());
        assertEquals(List.of("0000:00:05.0"), kernel(List.of("0000:00:05.0")).deviceIds());
    }

    @Test
    void refusesToOpenWhatIsNotAVfioDevice() throws Exception {
        Files.createDirectories(root.resolve("sys/bus/pci/devices/0000:00:05.0"));
        LinuxKernel k = kernel(null);
        assertEquals("EINVAL", assertThrows(KernelException.class, () -> k.open("not-an-address")).errnoName());
        assertEquals("ENOENT", assertThrows(KernelException.class, () -> k.open("0000:00:09.0")).errnoName());
        assertEquals("ENODEV", assertThrows(KernelException.class, () -> k.open("0000:00:05.0")).errnoName());
    }

    @Test
    void readsItsDeviceListFromTheConfiguration() {
        assertEquals(List.of("0000:00:07.0"),
                LinuxKernel.fromConfig(java.util.Map.of("linux", java.util.Map.of("devices", List.of("0000:00:07.0")))).deviceIds());
        assertThrows(IllegalArgumentException.class,
                () -> LinuxKernel.fromConfig(java.util.Map.of("linux", java.util.Map.of("devices", List.of("07.0")))));
    }
}

package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.Errno;
import org.vfioexport.kernel.KernelException;
import org.vfioexport.kernel.Ops;
import org.vfioexport.kernel.VfioDevice;
import org.vfioexport.kernel.VfioKernel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The real kernel: devices bound to vfio-pci, opened through the iommufd cdev path when the kernel has it
 * ({@code /dev/iommu} and {@code /dev/vfio/devices}), otherwise through the group/container (type1) path.
 */
public final class LinuxKernel implements VfioKernel {
    public static final String NATIVE_ACCESS_FLAG = "--enable-native-access=ALL-UNNAMED";

    private final VfioSyscalls sys;
    private final Path devVfio;
    private final Path devIommu;
    private final Sysfs sysfs;
    private final List<String> configured;
    private final GroupContainerPath groupPath;
    private final IommufdCdevPath cdevPath;
    private final IommufdImportSpace importSpace;

    /** Every device bound to vfio-pci, found in sysfs. */
    public LinuxKernel() {
        this(null);
    }

    /** Only the listed devices (PCI addresses); null means every device bound to vfio-pci. */
    public LinuxKernel(List<String> deviceIds) {
        this(Path.of("/dev"), Path.of("/sys/bus/pci"), deviceIds);
    }

    /**
     * From the daemon's configuration: an optional {@code linux} section with {@code devices}, a list of PCI
     * addresses to serve. Without it, every device bound to vfio-pci is served. (The top-level {@code devices}
     * list describes simulated devices and is not read here.)
     */
    public static LinuxKernel fromConfig(Map<String, Object> conf) {
        Object section = conf.get("linux");
        if (!(section instanceof Map<?, ?> linux) || linux.get("devices") == null) return new LinuxKernel();
        if (!(linux.get("devices") instanceof List<?> ids)) {
            throw new IllegalArgumentException("linux.devices must be a list of PCI addresses");
        }
        List<String> out = new java.util.ArrayList<>();
        for (Object id : ids) {
            if (!(id instanceof String s) || !Sysfs.PCI_ADDRESS.matcher(s).matches()) {
                throw new IllegalArgumentException("linux.devices: not a PCI address DDDD:BB:DD.F: " + id);
            }
            out.add(s);
        }
        return new LinuxKernel(out);
    }

    LinuxKernel(Path dev, Path sysBusPci, List<String> deviceIds) {
        this(FfmVfioSyscalls.INSTANCE, dev, sysBusPci, deviceIds);
    }

    /** With the syscalls given: the real ones, or a model of /dev/vfio and /dev/iommu in the unit tests. */
    LinuxKernel(VfioSyscalls sys, Path dev, Path sysBusPci, List<String> deviceIds) {
        this.sys = sys;
        this.devVfio = dev.resolve("vfio");
        this.devIommu = dev.resolve("iommu");
        this.sysfs = new Sysfs(sysBusPci);
        this.configured = deviceIds == null ? null : List.copyOf(deviceIds);
        this.groupPath = new GroupContainerPath(sys, devVfio, sysfs);
        this.cdevPath = new IommufdCdevPath(sys, devVfio.resolve("devices"), devIommu, sysfs);
        this.importSpace = new IommufdImportSpace(sys, devIommu);
    }

    /** iommufd ({@code /dev/iommu}) imports dma-bufs here ({@link IommufdImporter}). */
    @Override
    public boolean hasImporters() {
        return Files.exists(devIommu);
    }

    /** Closes the importers' iommufd (devices are closed by their owners first). */
    @Override
    public void close() {
        importSpace.close();
    }

    @Override
    public String name() {
        return "linux";
    }

    @Override
    public boolean isAvailable() {
        return unavailabilityCause() == null;
    }

    @Override
    public String unavailabilityCause() {
        String nativeAccess = nativeAccessProblem();
        if (nativeAccess != null) return nativeAccess;
        if (!Files.isDirectory(devVfio)) {
            return "no " + devVfio + ": the VFIO modules are not loaded (modprobe vfio-pci) or this is not Linux";
        }
        Path node = useCdev() ? devIommu : devVfio.resolve("vfio");
        if (!Files.exists(node)) return "no " + node + ": the kernel has neither the iommufd cdev nor the VFIO container";
        if (!Files.isReadable(node) || !Files.isWritable(node)) {
            return "no permission to open " + node + " read-write (run as root or grant this user access)";
        }
        return null;
    }

    /** The FFM downcalls need native access; with --illegal-native-access=deny they fail at first use. */
    private static String nativeAccessProblem() {
        try {
            Posix.lseek(-1, 0, Posix.SEEK_SET); // links libc: EBADF is the expected answer
            return null;
        } catch (PosixException expected) {
            return null;
        } catch (IllegalCallerException e) {
            return "native access is denied to the FFM downcalls: start the JVM with " + NATIVE_ACCESS_FLAG;
        } catch (ExceptionInInitializerError | NoClassDefFoundError e) {
            return "the libc downcalls cannot be linked (" + e + "); with denied native access, start the JVM with "
                    + NATIVE_ACCESS_FLAG;
        }
    }

    private boolean useCdev() {
        return Files.exists(devIommu) && Files.isDirectory(devVfio.resolve("devices"));
    }

    /** The IOMMU groups the group path holds open now (for tests). */
    java.util.Set<String> openGroups() {
        return groupPath.openGroups();
    }

    @Override
    public List<String> deviceIds() {
        return configured != null ? configured : sysfs.vfioPciDevices();
    }

    @Override
    public VfioDevice open(String deviceId) throws KernelException {
        if (!Sysfs.PCI_ADDRESS.matcher(deviceId).matches()) {
            throw new KernelException(Ops.OPEN, Errno.EINVAL, "not a PCI address: " + deviceId);
        }
        if (!sysfs.exists(deviceId)) throw new KernelException(Ops.OPEN, Errno.ENOENT, "no PCI device " + deviceId);
        String driver = sysfs.driver(deviceId).orElse("no driver");
        // vfio-pci itself, or a variant driver such as nvgrace-gpu-vfio-pci; a host driver owns the device
        if (!driver.contains("vfio")) {
            throw new KernelException(Ops.OPEN, Errno.ENODEV, deviceId + " is bound to " + driver + ", not vfio-pci");
        }
        long[] bars = sysfs.resourceStarts(deviceId);
        OpenedDevice d = useCdev() && sysfs.vfioCdev(deviceId).isPresent() ? cdevPath.open(deviceId) : groupPath.open(deviceId);
        return new LinuxVfioDevice(sys, deviceId, d, bars, importSpace);
    }
}

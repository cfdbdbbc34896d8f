package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.uapi.Vfio;
import org.vfioexport.ffm.uapi.VfioIoctls.DeviceInfoReply;
import org.vfioexport.ffm.uapi.VfioIoctls.RegionInfoReply;
import org.vfioexport.ffm.posix.Errno;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.vfioexport.ffm.uapi.Vfio.VFIO_DEVICE_FEATURE_GET;
import static org.vfioexport.ffm.uapi.Vfio.VFIO_DEVICE_FEATURE_MASK;
import static org.vfioexport.ffm.uapi.Vfio.VFIO_DEVICE_FEATURE_PROBE;
import static org.vfioexport.ffm.uapi.Vfio.VFIO_DEVICE_FEATURE_SET;

/**
 * A model of {@code /dev/vfio} and {@code /dev/iommu} behind {@link VfioSyscalls}, for the Linux backend's unit
 * tests: a machine of PCI functions in IOMMU groups, with the container, group, device cdev and iommufd files, their
 * fds, regions and a virtual config space. Every answer is the real kernel's where it is known (the source each
 * one follows is named beside it: drivers/vfio/{container,group,device_cdev,vfio_main}.c,
 * drivers/vfio/pci/vfio_pci_{core,config,dmabuf}.c, drivers/iommu/iommufd/main.c, and docs/kernel-semantics.md),
 * not what the backend expects.
 *
 * <p>The fake also writes the files the backend reads directly: the sysfs tree (driver and iommu_group links,
 * vfio-dev, {@code resource}) and the device nodes, under a directory of the test's.
 *
 * <p>For the cleanup tests it counts: every fd it handed out and not yet closed ({@link #openFds()}), every call by
 * name, and it can fail the Nth call ({@link #failNth}) with an errno, as the kernel fails an allocation.
 */
final class FakeVfio implements VfioSyscalls {
    static final long PAGE = 4096;
    /** VFIO_PCI_OFFSET_SHIFT: region index N starts at N << 40 in the device fd. */
    static final int OFFSET_SHIFT = 40;
    static final int EBADFD = 77;
    /** Fake fd numbers start here, far above any real fd of the test JVM, so none is ever mistaken for one. */
    private static final int FIRST_FD = 1_000_000_000;
    private static final int PCI_COMMAND = 0x04, PCI_COMMAND_MEMORY = 0x2, PCI_BASE_ADDRESS_0 = 0x10;

    // ---- the machine ---------------------------------------------------------------------------------------

    enum BarType { MEM32, MEM64, IO }

    /** One BAR as the hardware has it. A 64-bit BAR takes its index and the next. */
    record Bar(int index, BarType type, long size, boolean prefetchable, long address) {}

    /** One PCI function. Mutable only while the machine is being described. */
    static final class Device {
        final String id;
        final int group;
        String driver = "vfio-pci";
        boolean reset, vga, dmabuf = true, variantDriver;
        long romSize, romAddress;
        int msixBar = -1;
        final Map<Integer, Bar> bars = new TreeMap<>();
        // state
        byte[] config = new byte[256];
        int openCount;
        boolean cdevOpen;      // opened (and bound) through its cdev
        String cdev;           // vfioN when the kernel has CONFIG_VFIO_DEVICE_CDEV
        final List<DmaBufFile> dmaBufs = new ArrayList<>();   // vdev->dmabufs: the exported buffers still alive

        Device(String id, int group) {
            this.id = id;
            this.group = group;
        }

        Device bar(int index, BarType type, long size, boolean prefetchable, long address) {
            bars.put(index, new Bar(index, type, size, prefetchable, address));
            return this;
        }

        /** A PCI Express function: 4 KiB of config space (pdev->cfg_size), as the lab's NVMe shows. */
        Device pcie() {
            config = new byte[4096];
            return this;
        }

        Device withReset() {
            reset = true;
            return this;
        }

        Device boundTo(String d) {
            driver = d;
            return this;
        }

        Bar barAt(int index) {
            Bar b = bars.get(index);
            return b;
        }

        /** The power-on config space: BARs with their address and type bits, memory decoding on. */
        void powerOn() {
            java.util.Arrays.fill(config, (byte) 0);
            put16(0, 0x1b36);
            for (Bar b : bars.values()) {
                int at = PCI_BASE_ADDRESS_0 + 4 * b.index();
                switch (b.type()) {
                    case IO -> put32(at, (int) b.address() | 0x1);
                    case MEM32 -> put32(at, (int) b.address() | (b.prefetchable() ? 0x8 : 0));
                    case MEM64 -> {
                        put32(at, (int) b.address() | 0x4 | (b.prefetchable() ? 0x8 : 0));
                        put32(at + 4, (int) (b.address() >>> 32));
                    }
                }
            }
            put16(PCI_COMMAND, PCI_COMMAND_MEMORY);
        }

        void put16(int at, int v) {
            config[at] = (byte) v;
            config[at + 1] = (byte) (v >>> 8);
        }

        void put32(int at, int v) {
            put16(at, v);
            put16(at + 2, v >>> 16);
        }

        boolean memoryEnabled() {
            return (config[PCI_COMMAND] & PCI_COMMAND_MEMORY) != 0;
        }

        /** pci_resource_len of a BAR index: 0 for an absent BAR and for the upper half of a 64-bit one. */
        long barSize(int index) {
            Bar b = bars.get(index);
            return b == null ? 0 : b.size();
        }
    }

    private final Path root;
    private final boolean iommufd;
    private final boolean noiommu;
    private final Map<String, Device> devices = new LinkedHashMap<>();
    private final Map<Integer, GroupState> groups = new TreeMap<>();

    private static final class GroupState {
        final int number;
        GroupFile file;          // the open group file, alive while its fd or a device fd holds it
        int cdevOpen;            // devices of the group open through their cdev (vfio_device_block_group)

        GroupState(int number) {
            this.number = number;
        }
    }

    /**
     * @param iommufd the kernel has CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV: {@code /dev/iommu} and a cdev per
     *                device (the group path stays, as CONFIG_VFIO_GROUP keeps it)
     * @param noiommu the unsafe no-IOMMU mode: groups are {@code noiommu-N} and take the NOIOMMU "IOMMU"
     */
    FakeVfio(Path root, boolean iommufd, boolean noiommu, List<Device> machine) {
        this.root = root;
        this.iommufd = iommufd;
        this.noiommu = noiommu;
        int cdev = 0;
        for (Device d : machine) {
            devices.put(d.id, d);
            groups.computeIfAbsent(d.group, GroupState::new);
            d.powerOn();
            if (iommufd && d.driver.contains("vfio")) d.cdev = "vfio" + cdev++;
        }
        try {
            writeNodesAndSysfs();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The VM lab's four functions, as their guest's sysfs shows them (conf/vmlab-devices.json). */
    static List<Device> lab() {
        return List.of(
                new Device("0000:00:07.0", 6).withReset().pcie()
                        .bar(0, BarType.MEM64, 16 * 1024, false, 0xfeb1_0000L)
                        .bar(2, BarType.MEM64, 16 << 20, true, 0xfd00_0000L),
                new Device("0000:00:04.0", 3)
                        .bar(0, BarType.MEM32, 256, false, 0xfeb1_7000L)
                        .bar(2, BarType.MEM64, 4 << 20, true, 0xfe00_0000L),
                new Device("0000:00:05.0", 4)
                        .bar(0, BarType.MEM32, PAGE, false, 0xfeb1_8000L)
                        .bar(1, BarType.IO, 256, false, 0xc000),
                new Device("0000:00:06.0", 5)
                        .bar(0, BarType.MEM32, 1 << 20, false, 0xfea0_0000L));
    }

    Path dev() {
        return root.resolve("dev");
    }

    Path sysBusPci() {
        return root.resolve("sys/bus/pci");
    }

    Device device(String id) {
        return devices.get(id);
    }

    private void writeNodesAndSysfs() throws IOException {
        Path vfio = Files.createDirectories(dev().resolve("vfio"));
        Files.createFile(vfio.resolve("vfio"));
        for (GroupState g : groups.values()) Files.createFile(vfio.resolve((noiommu ? "noiommu-" : "") + g.number));
        if (iommufd) {
            Files.createFile(dev().resolve("iommu"));
            Files.createDirectories(vfio.resolve("devices"));
        }
        Path pci = sysBusPci();
        Path drivers = Files.createDirectories(pci.resolve("drivers"));
        Path iommuGroups = Files.createDirectories(root.resolve("sys/kernel/iommu_groups"));
        for (Device d : devices.values()) {
            Path dir = Files.createDirectories(pci.resolve("devices").resolve(d.id));
            Path driver = Files.createDirectories(drivers.resolve(d.driver));
            Files.createSymbolicLink(dir.resolve("driver"), driver);
            Files.createSymbolicLink(driver.resolve(d.id), dir);
            Path group = Files.createDirectories(iommuGroups.resolve(Integer.toString(d.group)));
            Files.createSymbolicLink(dir.resolve("iommu_group"), group);
            if (d.cdev != null) {
                Files.createDirectories(dir.resolve("vfio-dev").resolve(d.cdev));
                Files.createFile(vfio.resolve("devices").resolve(d.cdev));
            }
            // drivers/pci/pci-sysfs.c resource_show: "0x%016llx 0x%016llx 0x%016llx\n" per resource
            StringBuilder res = new StringBuilder();
            for (int i = 0; i <= 12; i++) {
                long start = 0, end = 0, flags = 0;
                Bar b = i < 6 ? d.bars.get(i) : null;
                if (b != null) {
                    start = b.address();
                    end = b.address() + b.size() - 1;
                    flags = b.type() == BarType.IO ? 0x40101 : 0x40200 | (b.type() == BarType.MEM64 ? 0x100004 : 0)
                            | (b.prefetchable() ? 0x2008 : 0);
                } else if (i == 6 && d.romSize != 0) {
                    start = d.romAddress;
                    end = d.romAddress + d.romSize - 1;
                    flags = 0x46200;
                }
                res.append(String.format("0x%016x 0x%016x 0x%016x%n", start, end, flags));
            }
            Files.writeString(dir.resolve("resource"), res);
        }
    }

    // ---- files and fds -------------------------------------------------------------------------------------

    private abstract static class File {
        int fds;                  // fds referring to this file (open, dup)
        int holds;                // references from other files (a device file holds its group file)

        void released() {}
    }

    private final class Container extends File {
        final List<GroupFile> groups = new ArrayList<>();
        int iommuType;

        @Override
        void released() {
            // the groups hold the container until they go; nothing else to undo
        }
    }

    private final class GroupFile extends File {
        final GroupState group;
        Container container;

        GroupFile(GroupState group) {
            this.group = group;
        }

        /** vfio_group_fops_release, run when the fd is closed and no device fd holds the file any more. */
        @Override
        void released() {
            if (container != null) {
                container.groups.remove(this);
                // the last group leaving a container takes the IOMMU driver with it (__vfio_group_unset_container)
                if (container.groups.isEmpty()) container.iommuType = 0;
                container = null;
            }
            group.file = null;
        }
    }

    private final class IommufdFile extends File {
        final List<Integer> ioas = new ArrayList<>();
        final Map<Integer, List<Area>> areas = new TreeMap<>();
        int nextId = 1;

        IommufdFile() {
            iommufds.add(this);
        }

        @Override
        void released() {
            for (List<Area> l : areas.values()) for (Area a : l) drop(a.file);
            areas.clear();
            iommufds.remove(this);
        }
    }

    private final List<IommufdFile> iommufds = new ArrayList<>();

    private final class DeviceFile extends File {
        final Device device;
        final GroupFile group;    // non-null: from VFIO_GROUP_GET_DEVICE_FD
        IommufdFile iommufd;      // the cdev's binding
        boolean accessGranted;    // df->access_granted: set once opened (group) or bound (cdev)
        Integer attachedIoas;

        DeviceFile(Device device, GroupFile group) {
            this.device = device;
            this.group = group;
        }

        @Override
        void released() {
            if (accessGranted) {
                // vfio_df_close: the last close of the device restores the power-on state (the lab: memory
                // decoding on at the next open)
                if (--device.openCount == 0) {
                    moveDmaBufs(device, true);
                    for (DmaBufFile b : device.dmaBufs) b.cleanedUp = true;
                    device.powerOn();
                }
            }
            if (group != null) drop(group);
            if (iommufd != null) {
                device.cdevOpen = false;
                groups.get(device.group).cdevOpen--;
                drop(iommufd);
            }
        }
    }

    private final class DmaBufFile extends File {
        final long size;
        final Device device;
        final int ranges;
        boolean revoked;          // priv->revoked: importers' mappings are zapped, new ones are ENODEV
        boolean cleanedUp;        // the device was closed: revoked for good (vfio_pci_dma_buf_cleanup)

        DmaBufFile(long size, Device device, int ranges) {
            this.size = size;
            this.device = device;
            this.ranges = ranges;
        }

        @Override
        void released() {
            device.dmaBufs.remove(this);
        }
    }

    /** An IOVA area of an IOAS: a dma-buf mapped by IOMMU_IOAS_MAP_FILE, live until its buffer is revoked. */
    private static final class Area {
        final long iova, length;
        final DmaBufFile file;
        boolean live = true;      // the IOMMU page table translates it; a revoke zaps it and nothing restores it

        Area(long iova, long length, DmaBufFile file) {
            this.iova = iova;
            this.length = length;
            this.file = file;
        }
    }

    /**
     * vfio_pci_dma_buf_move: a revoke zaps every importer's mapping of the device's buffers (iommufd keeps the
     * dead areas and says nothing); a restore only clears the flag, it maps nothing back.
     */
    private void moveDmaBufs(Device d, boolean revoke) {
        for (DmaBufFile b : d.dmaBufs) {
            if (b.cleanedUp) continue;
            b.revoked = revoke;
            if (revoke) {
                for (IommufdFile i : iommufds) {
                    for (List<Area> areas : i.areas.values()) for (Area a : areas) if (a.file == b) a.live = false;
                }
            }
        }
    }

    private final Map<Integer, File> fdTable = new TreeMap<>();
    private int nextFd = FIRST_FD;

    private int install(File f) {
        f.fds++;
        int fd = nextFd++;
        fdTable.put(fd, f);
        return fd;
    }

    private void drop(File f) {
        if (--f.holds == 0 && f.fds == 0) f.released();
    }

    // ---- counting and failing ------------------------------------------------------------------------------

    private final Map<String, Integer> calls = new HashMap<>();
    private final List<String> trace = new ArrayList<>();
    private long callCount, failAt = -1;
    private int failErrno;
    private boolean failed;
    private String failedCall;

    /** Fails the {@code n}th call from now (1 is the next) with {@code errno}; the others answer as usual. */
    synchronized void failNth(long n, int errno) {
        failAt = callCount + n;
        failErrno = errno;
        failed = false;
    }

    /** Whether the planned failure has happened. */
    synchronized boolean failureHappened() {
        return failed;
    }

    /** The C name of the call that was failed, or null. */
    synchronized String failedCall() {
        return failed ? failedCall : null;
    }

    synchronized void noFailure() {
        failAt = -1;
    }

    /** The fds handed out and not closed, with what they are. */
    synchronized Map<Integer, String> openFds() {
        Map<Integer, String> out = new TreeMap<>();
        fdTable.forEach((fd, f) -> out.put(fd, f.getClass().getSimpleName()
                + (f instanceof DeviceFile d ? " " + d.device.id : f instanceof GroupFile g ? " " + g.group.number : "")));
        return out;
    }

    /** How often {@code name} (the C name of a call, e.g. {@code VFIO_DEVICE_GET_REGION_INFO}) was made. */
    synchronized int calls(String name) {
        return calls.getOrDefault(name, 0);
    }

    synchronized List<String> trace() {
        return List.copyOf(trace);
    }

    /** Whether the group's node is free: no group file alive (a new open of it would not be EBUSY). */
    synchronized boolean groupReleased(int group) {
        return groups.get(group).file == null;
    }

    private void enter(String name) throws PosixException {
        callCount++;
        calls.merge(name, 1, Integer::sum);
        trace.add(name);
        if (callCount == failAt) {
            failed = true;
            failedCall = name;
            // close(2) fails with EIO or EINTR, never for want of memory (and releases the fd all the same)
            throw new PosixException(name, name.equals("close") ? Errno.EIO.value : failErrno);
        }
    }

    private static PosixException err(String op, Errno e) {
        return new PosixException(op, e.value);
    }

    private <T extends File> T file(int fd, Class<T> type, String op) throws PosixException {
        File f = fdTable.get(fd);
        if (f == null) throw err(op, Errno.EBADF);
        // an ioctl the file's fops do not know: -ENOTTY (ENOIOCTLCMD to user space)
        if (!type.isInstance(f)) throw err(op, Errno.ENOTTY);
        return type.cast(f);
    }

    /** A device fd whose access is granted: before a cdev is bound every other device ioctl is EINVAL. */
    private DeviceFile device(int fd, String op) throws PosixException {
        DeviceFile d = file(fd, DeviceFile.class, op);
        if (!d.accessGranted) throw err(op, Errno.EINVAL);
        return d;
    }

    // ---- VfioSyscalls --------------------------------------------------------------------------------------

    @Override
    public synchronized int open(String path) throws PosixException {
        enter("open");
        Path p = Path.of(path);
        Path vfio = dev().resolve("vfio");
        if (p.equals(vfio.resolve("vfio"))) return install(new Container());
        if (iommufd && p.equals(dev().resolve("iommu"))) return install(new IommufdFile());
        if (p.getParent().equals(vfio)) {
            String name = p.getFileName().toString();
            if (noiommu == name.startsWith("noiommu-")) {
                try {
                    GroupState g = groups.get(Integer.parseInt(noiommu ? name.substring(8) : name));
                    if (g != null) {
                        // vfio_group_fops_open: one open file per group; none while a device of it is open
                        // through its cdev
                        if (g.file != null || g.cdevOpen > 0) throw err("open", Errno.EBUSY);
                        g.file = new GroupFile(g);
                        return install(g.file);
                    }
                } catch (NumberFormatException ignored) {
                    // not a group node
                }
            }
        }
        if (iommufd && p.getParent().equals(vfio.resolve("devices"))) {
            for (Device d : devices.values()) {
                if (p.getFileName().toString().equals(d.cdev)) return install(new DeviceFile(d, null));
            }
        }
        throw err("open", Errno.ENOENT);
    }

    @Override
    public synchronized void close(int fd) throws PosixException {
        File f = fdTable.remove(fd);
        if (f instanceof DmaBufFile) Posix.close(fd);
        // the fd is gone whatever close reports (Linux releases it before any error is known)
        if (f != null && --f.fds == 0 && f.holds == 0) f.released();
        enter("close");
        if (f == null) throw err("close", Errno.EBADF);
    }

    @Override
    public synchronized int dup(int fd) throws PosixException {
        enter("dup");
        File f = fdTable.get(fd);
        if (f == null) throw err("dup", Errno.EBADF);
        if (f instanceof DmaBufFile) {
            int copy = Posix.dup(fd);
            f.fds++;
            fdTable.put(copy, f);
            return copy;
        }
        return install(f);
    }

    @Override
    public synchronized int getApiVersion(int container) throws PosixException {
        enter("VFIO_GET_API_VERSION");
        file(container, Container.class, "VFIO_GET_API_VERSION");
        return Vfio.VFIO_API_VERSION;
    }

    private boolean supports(int type) {
        return noiommu ? type == Vfio.VFIO_NOIOMMU_IOMMU
                : type == Vfio.VFIO_TYPE1_IOMMU || type == Vfio.VFIO_TYPE1v2_IOMMU;
    }

    @Override
    public synchronized boolean checkExtension(int container, int extension) throws PosixException {
        enter("VFIO_CHECK_EXTENSION");
        file(container, Container.class, "VFIO_CHECK_EXTENSION");
        // with an IOMMU driver set, that driver answers; before, any registered driver that supports it: here the
        // same answer, type1 with an IOMMU, the NOIOMMU driver in no-IOMMU mode
        return supports(extension);
    }

    @Override
    public synchronized void setIommu(int container, int type) throws PosixException {
        String op = "VFIO_SET_IOMMU";
        enter(op);
        Container c = file(container, Container.class, op);
        // vfio_ioctl_set_iommu: no group in the container yet, or a driver already set
        if (c.groups.isEmpty() || c.iommuType != 0) throw err(op, Errno.EINVAL);
        if (!supports(type)) throw err(op, Errno.ENODEV);
        c.iommuType = type;
    }

    private boolean viable(GroupState g) {
        for (Device d : devices.values()) {
            if (d.group == g.number && !d.driver.contains("vfio") && !d.driver.equals("pci-stub")) return false;
        }
        return true;
    }

    @Override
    public synchronized int groupStatus(int group) throws PosixException {
        enter("VFIO_GROUP_GET_STATUS");
        GroupFile g = file(group, GroupFile.class, "VFIO_GROUP_GET_STATUS");
        return (viable(g.group) ? Vfio.VFIO_GROUP_FLAGS_VIABLE : 0)
                | (g.container != null ? Vfio.VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
    }

    @Override
    public synchronized void groupSetContainer(int group, int container) throws PosixException {
        String op = "VFIO_GROUP_SET_CONTAINER";
        enter(op);
        GroupFile g = file(group, GroupFile.class, op);
        File cf = fdTable.get(container);
        if (cf == null) throw err(op, Errno.EBADF);
        if (g.container != null) throw err(op, Errno.EINVAL);
        if (!(cf instanceof Container c)) throw err(op, Errno.EINVAL);
        // iommu_group_claim_dma_owner: a member still bound to a kernel driver owns the group's DMA
        if (!viable(g.group)) throw err(op, Errno.EPERM);
        g.container = c;
        c.groups.add(g);
    }

    @Override
    public synchronized int groupGetDeviceFd(int group, String name) throws PosixException {
        String op = "VFIO_GROUP_GET_DEVICE_FD";
        enter(op);
        GroupFile g = file(group, GroupFile.class, op);
        Device d = devices.get(name);
        if (d == null || d.group != g.group.number) throw err(op, Errno.ENODEV);
        // vfio_df_group_open: the group needs a container with an IOMMU driver set
        if (g.container == null || g.container.iommuType == 0) throw err(op, Errno.EINVAL);
        // the group path allows several opens of one device (docs/kernel-semantics.md: [7.2])
        DeviceFile f = new DeviceFile(d, g);
        g.holds++;
        f.accessGranted = true;
        d.openCount++;
        return install(f);
    }

    @Override
    public synchronized DeviceInfoReply deviceInfo(int device) throws PosixException {
        enter("VFIO_DEVICE_GET_INFO");
        Device d = device(device, "VFIO_DEVICE_GET_INFO").device;
        int flags = Vfio.VFIO_DEVICE_FLAGS_PCI | (d.reset ? Vfio.VFIO_DEVICE_FLAGS_RESET : 0);
        return new DeviceInfoReply(flags, Vfio.VFIO_PCI_NUM_REGIONS, 5 /* VFIO_PCI_NUM_IRQS */);
    }

    @Override
    public synchronized RegionInfoReply regionInfo(int device, int index) throws PosixException {
        String op = "VFIO_DEVICE_GET_REGION_INFO";
        calls.merge(op + "[" + index + "]", 1, Integer::sum);
        enter(op);
        Device d = device(device, op).device;
        long offset = (long) index << OFFSET_SHIFT;
        int rw = Vfio.VFIO_REGION_INFO_FLAG_READ | Vfio.VFIO_REGION_INFO_FLAG_WRITE;
        // vfio_pci_ioctl_get_region_info
        if (index >= 0 && index <= Vfio.VFIO_PCI_BAR5_REGION_INDEX) {
            long size = d.barSize(index);
            if (size == 0) return new RegionInfoReply(index, 0, 0, offset);
            int flags = rw;
            Bar b = d.barAt(index);
            // vfio_pci_probe_mmaps: a memory BAR of a page or more, or a page-aligned smaller one
            boolean mmap = b.type() != BarType.IO && (size >= PAGE || (b.address() & (PAGE - 1)) == 0);
            if (mmap) {
                flags |= Vfio.VFIO_REGION_INFO_FLAG_MMAP;
                // the MSI-X BAR carries VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: CAPS, with cap_offset 0 when argsz
                // is too small to hold the chain (the backend asks for the bare struct)
                if (index == d.msixBar) flags |= Vfio.VFIO_REGION_INFO_FLAG_CAPS;
            }
            return new RegionInfoReply(index, flags, size, offset);
        }
        return switch (index) {
            case Vfio.VFIO_PCI_ROM_REGION_INDEX -> d.romSize != 0
                    ? new RegionInfoReply(index, Vfio.VFIO_REGION_INFO_FLAG_READ, d.romSize, offset)
                    : new RegionInfoReply(index, 0, 0, offset);
            case Vfio.VFIO_PCI_CONFIG_REGION_INDEX -> new RegionInfoReply(index, rw, d.config.length, offset);
            case Vfio.VFIO_PCI_VGA_REGION_INDEX -> {
                if (!d.vga) throw err(op, Errno.EINVAL);
                yield new RegionInfoReply(index, rw, 0xc0000, offset);
            }
            default -> throw err(op, Errno.EINVAL);   // past VFIO_PCI_NUM_REGIONS + device-specific regions
        };
    }

    @Override
    public synchronized void reset(int device) throws PosixException {
        enter("VFIO_DEVICE_RESET");
        Device d = device(device, "VFIO_DEVICE_RESET").device;
        if (!d.reset) throw err("VFIO_DEVICE_RESET", Errno.EINVAL);   // !vdev->reset_works
        // vfio_pci_ioctl_reset: revoke, pci_try_reset_function (which keeps COMMAND), restore if memory is on
        moveDmaBufs(d, true);
        if (d.memoryEnabled()) moveDmaBufs(d, false);
    }

    @Override
    public synchronized int featureDmaBuf(int device, int argsz, int featureFlags, int regionIndex, int openFlags,
                                          int flags, int nrRanges, long[] offsets, long[] lengths) throws PosixException {
        String op = "VFIO_DEVICE_FEATURE";
        enter(op);
        Device d = device(device, op).device;
        // vfio_ioctl_device_feature, then vfio_pci_core_feature_dma_buf (docs/kernel-semantics.md §2)
        if (Integer.compareUnsigned(argsz, 8) < 0) throw err(op, Errno.EINVAL);
        int all = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE;
        if ((featureFlags & ~all) != 0) throw err(op, Errno.EINVAL);
        boolean get = (featureFlags & VFIO_DEVICE_FEATURE_GET) != 0, set = (featureFlags & VFIO_DEVICE_FEATURE_SET) != 0;
        boolean probe = (featureFlags & VFIO_DEVICE_FEATURE_PROBE) != 0;
        if (get && set && !probe) throw err(op, Errno.EINVAL);
        if ((featureFlags & VFIO_DEVICE_FEATURE_MASK) != Vfio.VFIO_DEVICE_FEATURE_DMA_BUF || !d.dmabuf) {
            throw err(op, Errno.ENOTTY);
        }
        if (d.variantDriver) throw err(op, Errno.EOPNOTSUPP);
        if (set) throw err(op, Errno.EINVAL);
        if (probe) return 0;
        if (!get) throw err(op, Errno.EINVAL);
        if (Integer.compareUnsigned(argsz - 8, 16) < 0) throw err(op, Errno.EINVAL);
        if (nrRanges == 0 || flags != 0) throw err(op, Errno.EINVAL);
        if (Integer.compareUnsigned(regionIndex, 6) >= 0 || d.barSize(regionIndex) == 0) throw err(op, Errno.ENODEV);
        long n = Integer.toUnsignedLong(nrRanges);
        if (n * 16 > 4L << 20) throw err(op, Errno.ENOMEM);
        if (n > offsets.length) throw err(op, Errno.EFAULT);
        long sum = 0;
        for (int i = 0; i < n; i++) {
            if (lengths[i] == 0 || (offsets[i] & (PAGE - 1)) != 0 || (lengths[i] & (PAGE - 1)) != 0) {
                throw err(op, Errno.EINVAL);
            }
            long s = sum + lengths[i];
            if (Long.compareUnsigned(s, sum) < 0) throw err(op, Errno.EINVAL);
            sum = s;
        }
        if (sum < 0) throw err(op, Errno.EINVAL);
        Bar b = d.barAt(regionIndex);
        if (b.type() == BarType.IO || b.size() < PAGE) throw err(op, Errno.EINVAL);   // no P2P provider
        // vfio_pci_core_fill_phys_vec
        for (int i = 0; i < n; i++) {
            long a = b.address() + offsets[i];
            if (Long.compareUnsigned(a, b.address()) < 0) throw err(op, Errno.EOVERFLOW);
            long end = a + lengths[i];
            if (Long.compareUnsigned(end, a) < 0) throw err(op, Errno.EOVERFLOW);
            if (Long.compareUnsigned(end, b.address() + b.size()) > 0) throw err(op, Errno.EINVAL);
        }
        DmaBufFile buf = new DmaBufFile(sum, d, (int) n);
        int fd = installDmaBuf(buf, d.id, openFlags);
        d.dmaBufs.add(buf);
        // a buffer exported while memory decoding is off starts revoked (vfio_pci_core_feature_dma_buf)
        buf.revoked = !d.memoryEnabled();
        return fd;
    }

    /**
     * A dma-buf fd is a real fd, so that whoever holds it can lseek, fcntl and pass it on as they would a real one:
     * a sealed memfd of the buffer's size with the access mode and close-on-exec flag open_flags ask for
     * (dma_buf_fd keeps O_ACCMODE of open_flags, the fd is close-on-exec with O_CLOEXEC), as the simulated
     * kernel's. The fake still counts it and closes it.
     */
    private int installDmaBuf(DmaBufFile f, String device, int openFlags) throws PosixException {
        int fd = org.vfioexport.kernel.sim.Memfd.open("vfio-dmabuf:" + device, f.size, openFlags);
        f.fds++;
        fdTable.put(fd, f);
        return fd;
    }

    @Override
    public synchronized int bindIommufd(int device, int iommufdFd) throws PosixException {
        String op = "VFIO_DEVICE_BIND_IOMMUFD";
        enter(op);
        DeviceFile f = file(device, DeviceFile.class, op);
        // vfio_df_ioctl_bind_iommufd
        if (iommufdFd < 0) throw err(op, Errno.EINVAL);
        if (f.group != null) throw err(op, Errno.EINVAL);                  // only for cdev fds
        GroupState g = groups.get(f.device.group);
        if (g.file != null) throw err(op, Errno.EBUSY);                    // vfio_device_block_group
        if (f.accessGranted) throw err(op, Errno.EINVAL);                  // bound already
        File i = fdTable.get(iommufdFd);
        if (i == null) throw err(op, Errno.EBADF);                         // iommufd_ctx_from_fd
        if (!(i instanceof IommufdFile ictx)) throw new PosixException(op, EBADFD);
        // vfio_df_open: only the group path may open a device more than once
        if (f.device.openCount != 0) throw err(op, Errno.EINVAL);
        f.iommufd = ictx;
        ictx.holds++;
        g.cdevOpen++;
        f.device.cdevOpen = true;
        f.device.openCount++;
        f.accessGranted = true;
        return 1;   // out_devid
    }

    @Override
    public synchronized int ioasAlloc(int iommufdFd) throws PosixException {
        enter("IOMMU_IOAS_ALLOC");
        IommufdFile i = file(iommufdFd, IommufdFile.class, "IOMMU_IOAS_ALLOC");
        int id = i.nextId++;
        i.ioas.add(id);
        return id;
    }

    @Override
    public synchronized void attachIommufdPt(int device, int ptId) throws PosixException {
        String op = "VFIO_DEVICE_ATTACH_IOMMUFD_PT";
        enter(op);
        DeviceFile f = device(device, op);
        if (f.iommufd == null) throw err(op, Errno.EINVAL);
        if (!f.iommufd.ioas.contains(ptId)) throw err(op, Errno.ENOENT);   // iommufd_get_object
        f.attachedIoas = ptId;
    }

    @Override
    public synchronized void iommuDestroy(int iommufdFd, int id) throws PosixException {
        String op = "IOMMU_DESTROY";
        enter(op);
        IommufdFile i = file(iommufdFd, IommufdFile.class, op);
        if (!i.ioas.contains(id)) throw err(op, Errno.ENOENT);
        for (File f : fdTable.values()) {
            if (f instanceof DeviceFile df && df.iommufd == i && Integer.valueOf(id).equals(df.attachedIoas)) {
                throw err(op, Errno.EBUSY);   // a device is attached to it
            }
        }
        i.ioas.remove(Integer.valueOf(id));
        List<Area> areas = i.areas.remove(id);
        if (areas != null) for (Area a : areas) drop(a.file);
    }

    /** iommufd's iopt_map_file_pages with a dma-buf (drivers/iommu/iommufd/io_pagetable.c, pages.c). */
    @Override
    public synchronized long ioasMapFile(int iommufdFd, int ioas, int fd, long start, long length, long iova,
                                         boolean fixedIova) throws PosixException {
        String op = "IOMMU_IOAS_MAP_FILE";
        enter(op);
        IommufdFile i = file(iommufdFd, IommufdFile.class, op);
        if (!i.ioas.contains(ioas)) throw err(op, Errno.ENOENT);
        File f = fdTable.get(fd);
        if (f == null) throw err(op, Errno.EBADF);
        // only a VFIO dma-buf of one range (or a memfd, which this model does not hand out) can be mapped
        if (!(f instanceof DmaBufFile b) || b.ranges != 1) throw err(op, Errno.EOPNOTSUPP);
        if (b.revoked || b.cleanedUp) throw err(op, Errno.ENODEV);
        if (length == 0 || start < 0 || Long.compareUnsigned(start + length, b.size) > 0) throw err(op, Errno.EINVAL);
        List<Area> areas = i.areas.computeIfAbsent(ioas, k -> new ArrayList<>());
        long at = iova;
        if (!fixedIova) {
            at = PAGE;
            for (Area a : areas) at = Math.max(at, a.iova + a.length);
        }
        for (Area a : areas) {
            if (at < a.iova + a.length && a.iova < at + length) throw err(op, Errno.EEXIST);
        }
        areas.add(new Area(at, length, b));
        b.holds++;
        return at;
    }

    /** iopt_unmap_iova: removes the areas inside the range, live or dead; ENOENT when there is none. */
    @Override
    public synchronized long ioasUnmap(int iommufdFd, int ioas, long iova, long length) throws PosixException {
        String op = "IOMMU_IOAS_UNMAP";
        enter(op);
        IommufdFile i = file(iommufdFd, IommufdFile.class, op);
        if (!i.ioas.contains(ioas)) throw err(op, Errno.ENOENT);
        List<Area> areas = i.areas.getOrDefault(ioas, new ArrayList<>());
        long unmapped = 0;
        for (java.util.Iterator<Area> it = areas.iterator(); it.hasNext(); ) {
            Area a = it.next();
            boolean inside = a.iova >= iova && a.iova + a.length <= iova + length;
            boolean overlaps = a.iova < iova + length && iova < a.iova + a.length;
            if (overlaps && !inside) throw err(op, Errno.EINVAL);   // an area is never split
            if (inside) {
                it.remove();
                unmapped += a.length;
                drop(a.file);
            }
        }
        if (unmapped == 0) throw err(op, Errno.ENOENT);
        return unmapped;
    }

    /** Whether a device attached to this IOAS would reach the buffer at {@code iova} (a live IOMMU mapping). */
    synchronized boolean translates(int iommufdFd, int ioas, long iova) {
        File f = fdTable.get(iommufdFd);
        if (!(f instanceof IommufdFile i)) return false;
        for (Area a : i.areas.getOrDefault(ioas, List.of())) {
            if (iova >= a.iova && iova < a.iova + a.length) return a.live;
        }
        return false;
    }

    /** The IOVA areas of an IOAS, live or dead. */
    synchronized int areas(int iommufdFd, int ioas) {
        File f = fdTable.get(iommufdFd);
        return f instanceof IommufdFile i ? i.areas.getOrDefault(ioas, List.of()).size() : 0;
    }

    /** vfs_read/vfs_write on a file whose fops have no read/write is EINVAL; so is a device before access. */
    private Device regionAccess(int device, String op, long offset, int count) throws PosixException {
        File f = fdTable.get(device);
        if (f == null) throw err(op, Errno.EBADF);
        if (!(f instanceof DeviceFile df) || !df.accessGranted) throw err(op, Errno.EINVAL);
        int index = (int) (offset >>> OFFSET_SHIFT);
        long pos = offset & ((1L << OFFSET_SHIFT) - 1);
        Device d = df.device;
        long size = switch (index) {
            case 0, 1, 2, 3, 4, 5 -> d.barSize(index);
            case Vfio.VFIO_PCI_CONFIG_REGION_INDEX -> d.config.length;
            default -> 0;
        };
        if (pos + count > size) throw err(op, Errno.EINVAL);
        if (index != Vfio.VFIO_PCI_CONFIG_REGION_INDEX && !d.memoryEnabled()) throw err(op, Errno.EIO);
        return d;
    }

    @Override
    public synchronized byte[] pread(int device, long offset, int count) throws PosixException {
        enter("pread");
        Device d = regionAccess(device, "pread", offset, count);
        byte[] out = new byte[count];
        if ((int) (offset >>> OFFSET_SHIFT) == Vfio.VFIO_PCI_CONFIG_REGION_INDEX) {
            System.arraycopy(d.config, (int) (offset & 0xfff), out, 0, count);
        }
        return out;
    }

    @Override
    public synchronized void pwrite(int device, long offset, byte[] data) throws PosixException {
        enter("pwrite");
        Device d = regionAccess(device, "pwrite", offset, data.length);
        if ((int) (offset >>> OFFSET_SHIFT) != Vfio.VFIO_PCI_CONFIG_REGION_INDEX) return;
        int pos = (int) (offset & 0xfff);
        boolean memoryBefore = d.memoryEnabled();
        // vfio_pci_config.c virtualises the header: of COMMAND, user space writes I/O, memory and bus master
        // (and INTx disable); the rest of this model's header is read-only
        for (int i = 0; i < data.length; i++) {
            int at = pos + i;
            if (at == PCI_COMMAND) d.config[at] = (byte) ((d.config[at] & ~0x07) | (data[i] & 0x07));
            if (at == PCI_COMMAND + 1) d.config[at] = (byte) ((d.config[at] & ~0x04) | (data[i] & 0x04));
        }
        // vfio_basic_config_write: a change of the memory bit revokes or restores the device's dma-bufs
        if (d.memoryEnabled() != memoryBefore) moveDmaBufs(d, !d.memoryEnabled());
    }
}

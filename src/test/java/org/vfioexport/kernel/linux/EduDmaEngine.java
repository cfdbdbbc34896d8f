package org.vfioexport.kernel.linux;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.uapi.PciRegs;
import org.vfioexport.kernel.Region;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;

/**
 * QEMU's {@code edu} device (hw/misc/edu.c) as a DMA peer in an iommufd IO address space: opened through its VFIO
 * cdev, bound to an iommufd, attached to an IOAS, then told to copy between IOVAs and its own 4 KiB buffer. Its
 * DMA goes through the emulated IOMMU, so it reaches an IOVA exactly when the IOAS maps it. Two user pages (a
 * memfd, mapped in the same IOAS) serve as the marker source and the destination of each read.
 *
 * <p>Registers (BAR0): 0x80 source, 0x88 destination, 0x90 count, 0x98 command (bit 0 run, bit 1 edu to RAM);
 * the buffer sits at 0x40000 in edu's own address space. Addresses are clamped to 28 bits. QEMU 7.2 aborts the
 * whole VM on a 4096-byte transfer, so reads are 2048 bytes.
 */
final class EduDmaEngine implements AutoCloseable {
    static final int LEN = 2048;
    private static final long BUFFER = 0x40000, SRC = 0x80, DST = 0x88, COUNT = 0x90, CMD = 0x98;
    private static final long CMD_RUN = 1, CMD_TO_RAM = 2;
    private static final long PAGES_IOVA = 0x10000;   // marker page, then destination page
    private static final byte MARKER = 0x5a, UNTOUCHED = (byte) 0xee;

    private final VfioSyscalls sys = FfmVfioSyscalls.INSTANCE;
    private final int iommufd, ioas;
    private int device = -1, pages = -1;
    private long bar0;

    /** Opens edu ({@code id}) through its cdev and attaches it to {@code ioas} of {@code iommufd}. */
    EduDmaEngine(String id, int iommufd, int ioas) throws PosixException, java.io.IOException {
        this.iommufd = iommufd;
        this.ioas = ioas;
        try (var cdevs = Files.list(Path.of("/sys/bus/pci/devices", id, "vfio-dev"))) {
            String cdev = cdevs.findFirst().orElseThrow(() -> new IllegalStateException(id + " has no vfio cdev"))
                    .getFileName().toString();
            device = sys.open("/dev/vfio/devices/" + cdev);
        }
        try {
            sys.bindIommufd(device, iommufd);
            sys.attachIommufdPt(device, ioas);
            bar0 = sys.regionInfo(device, Region.BAR0).offset();
            long config = sys.regionInfo(device, Region.CONFIG).offset();
            byte[] cmd = sys.pread(device, config + PciRegs.PCI_COMMAND, 2);
            // memory decoding for its registers, bus mastering for its DMA
            int v = (cmd[0] & 0xff) | (cmd[1] & 0xff) << 8 | PciRegs.PCI_COMMAND_MEMORY | PciRegs.PCI_COMMAND_MASTER;
            sys.pwrite(device, config + PciRegs.PCI_COMMAND, new byte[] {(byte) v, (byte) (v >>> 8)});
            pages = Posix.memfdCreate("edu-pages", Posix.MFD_CLOEXEC);
            Posix.ftruncate(pages, 2 * 4096);
            sys.ioasMapFile(iommufd, ioas, pages, 0, 2 * 4096, PAGES_IOVA, true);
        } catch (PosixException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** edu's identification register: 0x010000ed. Registers below 0x80 answer 4-byte accesses only. */
    int identification() throws PosixException {
        return ByteBuffer.wrap(sys.pread(device, bar0, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt();
    }

    /**
     * What edu reads at {@code iova}: the marker goes into edu's buffer first, then a DMA read of the IOVA over it,
     * then the buffer out to the destination page, which is returned. A read the IOMMU refused leaves the marker
     * (or zeros, as QEMU's IOMMU returns for a faulting read), never the IOVA's contents.
     */
    byte[] read(long iova) throws PosixException {
        byte[] marker = new byte[4096], untouched = new byte[4096];
        java.util.Arrays.fill(marker, MARKER);
        java.util.Arrays.fill(untouched, UNTOUCHED);
        sys.pwrite(pages, 0, marker);
        sys.pwrite(pages, 4096, untouched);
        dma(PAGES_IOVA, BUFFER, false);
        dma(iova, BUFFER, false);
        dma(BUFFER, PAGES_IOVA + 4096, true);
        byte[] out = sys.pread(pages, 4096, LEN);
        if (out[0] == UNTOUCHED && out[LEN - 1] == UNTOUCHED) {
            throw new IllegalStateException("edu's copy to RAM did not arrive: the engine itself does not work");
        }
        return out;
    }

    private void dma(long from, long to, boolean toRam) throws PosixException {
        setReg(SRC, from);
        setReg(DST, to);
        setReg(COUNT, LEN);
        setReg(CMD, CMD_RUN | (toRam ? CMD_TO_RAM : 0));
        // edu runs a transfer from a 100 ms timer of the guest's clock; poll its run bit, bounded
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while ((reg(CMD) & CMD_RUN) != 0) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("edu DMA did not finish in 30 s");
            LockSupport.parkNanos(Duration.ofMillis(5).toNanos());
        }
    }

    private long reg(long at) throws PosixException {
        return ByteBuffer.wrap(sys.pread(device, bar0 + at, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private void setReg(long at, long v) throws PosixException {
        sys.pwrite(device, bar0 + at, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    /** Detaches edu (closing its fd unbinds it) and unmaps the user pages, so the IOAS can be destroyed. */
    @Override
    public void close() {
        if (pages >= 0) {
            try {
                sys.ioasUnmap(iommufd, ioas, PAGES_IOVA, 2 * 4096);
            } catch (PosixException ignored) {
                // not mapped: the constructor failed before the map
            }
            sys.closeQuietly(pages);
            pages = -1;
        }
        sys.closeQuietly(device);
        device = -1;
    }
}

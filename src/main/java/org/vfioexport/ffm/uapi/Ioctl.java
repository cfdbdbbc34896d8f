package org.vfioexport.ffm.uapi;

/**
 * The {@code _IO} encoding of {@code asm-generic/ioctl.h}. VFIO and iommufd use only {@code _IO}: direction and
 * size bits are 0 (the structs carry their own {@code argsz}/{@code size}), so a number is {@code type << 8 | nr}
 * on every architecture.
 */
final class Ioctl {
    private Ioctl() {}

    /** {@code _IO(type, nr)}. */
    static int IO(int type, int nr) {
        return (type << 8) | nr;
    }
}

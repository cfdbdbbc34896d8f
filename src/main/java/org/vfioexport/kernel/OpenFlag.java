package org.vfioexport.kernel;

import org.vfioexport.ffm.posix.Posix;

import java.util.Locale;

/**
 * The open(2) flags a client may ask for on a new dma-buf file, by the name the protocol gives them
 * ({@code open_flags: ["rdwr", "cloexec"]}); the numbers are libc's, defined once in {@link Posix}.
 */
public enum OpenFlag {
    RDONLY(Posix.O_RDONLY), RDWR(Posix.O_RDWR), CLOEXEC(Posix.O_CLOEXEC);

    /** The flag's bits in {@code vfio_device_feature_dma_buf.open_flags}. */
    public final int bits;

    OpenFlag(int bits) {
        this.bits = bits;
    }

    /** The protocol's name of the flag: {@code rdonly}, {@code rdwr}, {@code cloexec}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The flag the protocol calls {@code name}, or null when there is none. */
    public static OpenFlag byWireName(String name) {
        for (OpenFlag f : values()) {
            if (f.wireName().equals(name)) return f;
        }
        return null;
    }
}

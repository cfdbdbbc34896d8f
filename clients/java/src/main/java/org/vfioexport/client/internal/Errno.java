package org.vfioexport.client.internal;

import java.util.Map;

/** The errno values a client meets on its socket, with their names (Linux, asm-generic as on x86-64 and aarch64). */
public final class Errno {
    private Errno() {}

    public static final int ENOENT = 2, EINTR = 4, EAGAIN = 11, EACCES = 13, ENAMETOOLONG = 36, EMSGSIZE = 90,
            ECONNREFUSED = 111;

    private static final Map<Integer, String> NAMES = Map.ofEntries(Map.entry(1, "EPERM"), Map.entry(2, "ENOENT"),
            Map.entry(4, "EINTR"), Map.entry(9, "EBADF"), Map.entry(11, "EAGAIN"), Map.entry(12, "ENOMEM"),
            Map.entry(13, "EACCES"), Map.entry(20, "ENOTDIR"), Map.entry(23, "ENFILE"), Map.entry(24, "EMFILE"),
            Map.entry(32, "EPIPE"), Map.entry(36, "ENAMETOOLONG"), Map.entry(88, "ENOTSOCK"), Map.entry(90, "EMSGSIZE"),
            Map.entry(104, "ECONNRESET"), Map.entry(109, "ETOOMANYREFS"), Map.entry(110, "ETIMEDOUT"),
            Map.entry(111, "ECONNREFUSED"));

    /** {@code errno} as people look it up, name and number: {@code ECONNREFUSED (111)}. */
    public static String describe(int errno) {
        return NAMES.getOrDefault(errno, "E" + errno) + " (" + errno + ")";
    }
}

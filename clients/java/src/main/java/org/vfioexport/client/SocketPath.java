package org.vfioexport.client;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.IntSupplier;

/**
 * Where the daemon's socket is, by one rule for the daemon and every client (as systemd and libvirt place theirs):
 *
 * <ol>
 *   <li>a path given explicitly ({@code --socket PATH}, or {@code Client.connect(path)});
 *   <li>else {@code $VFIO_EXPORT_SOCKET} when set and not empty;
 *   <li>else (the daemon only) the configuration's {@code socket} key;
 *   <li>else the default: {@code /run/vfio-export/vfio-export.sock} for root (uid 0), a system daemon's runtime
 *       directory; for any other uid {@code $XDG_RUNTIME_DIR/vfio-export/vfio-export.sock}, the user's own runtime
 *       directory (0700, the user's, made by the login manager). Without XDG_RUNTIME_DIR there is no default for a
 *       user other than root, and asking for one is an error that says to pass a path or set the variable: a
 *       shared directory such as /tmp would let another user plant the directory first.
 * </ol>
 *
 * <p>The result is always absolute (a relative path is resolved against the working directory), so what the daemon
 * prints is what a client in another directory must use.
 */
public final class SocketPath {
    private SocketPath() {}

    /** The environment variable that names the socket, for the daemon and its clients alike. */
    public static final String ENV = "VFIO_EXPORT_SOCKET";
    /** The default for root: a system daemon's runtime directory (systemd's {@code RuntimeDirectory=vfio-export}). */
    public static final Path SYSTEM_DEFAULT = Path.of("/run/vfio-export/vfio-export.sock");
    /** The directory, under a runtime directory, and the name of the socket. */
    public static final String DIRECTORY = "vfio-export", NAME = "vfio-export.sock";

    /** No socket path was given and the rule has no default for this user. */
    public static final class NoDefaultException extends IllegalStateException {
        NoDefaultException(String message) {
            super(message);
        }
    }

    /** The socket for this process: {@code $VFIO_EXPORT_SOCKET}, else the default for its uid and environment. */
    public static Path resolve() {
        return resolve(null, null, System.getenv(), SocketPath::currentUid);
    }

    /**
     * The socket by the rule: {@code explicit}, else {@code env}'s VFIO_EXPORT_SOCKET, else {@code configured} (the
     * daemon's configuration; null for clients), else {@link #defaultFor}; absolute.
     */
    public static Path resolve(Path explicit, Path configured, Map<String, String> env, IntSupplier uid) {
        if (explicit != null) return explicit.toAbsolutePath();
        String named = env.get(ENV);
        if (named != null && !named.isEmpty()) return Path.of(named).toAbsolutePath();
        if (configured != null) return configured.toAbsolutePath();
        return defaultFor(uid.getAsInt(), env); // the uid is read only when needed: it costs a command line a few ms
    }

    /**
     * The default socket of {@code uid}: {@link #SYSTEM_DEFAULT} for root, else under {@code XDG_RUNTIME_DIR}
     * (when set to an absolute path), else {@link NoDefaultException}.
     */
    public static Path defaultFor(int uid, Map<String, String> env) {
        if (uid == 0) return SYSTEM_DEFAULT;
        String runtime = env.get("XDG_RUNTIME_DIR");
        if (runtime != null && !runtime.isEmpty() && Path.of(runtime).isAbsolute()) {
            return Path.of(runtime, DIRECTORY, NAME);
        }
        throw new NoDefaultException("no default socket for uid " + uid + ": XDG_RUNTIME_DIR is not set (root's is "
                + SYSTEM_DEFAULT + "); give the path with --socket PATH or " + ENV + "=PATH");
    }

    /** A description of the default for help texts, without failing where there is none. */
    public static String describeDefault() {
        return "$" + ENV + ", else " + SYSTEM_DEFAULT + " as root, $XDG_RUNTIME_DIR/" + DIRECTORY + "/" + NAME
                + " otherwise";
    }

    /** This process's effective uid, read from the owner of /proc/self (no native call needed). */
    public static int currentUid() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        } catch (IOException | UnsupportedOperationException e) {
            throw new IllegalStateException("cannot read this process's uid from /proc/self: " + e.getMessage(), e);
        }
    }
}

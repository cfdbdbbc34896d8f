package org.vfioexport.client;

import org.vfioexport.client.internal.Errno;

import java.io.IOException;
import java.nio.file.Path;

/** No connection to the daemon's socket: the path, the errno (0 when unknown) and what it usually means. */
public final class ConnectFailedException extends IOException {
    static final int ENOENT = 2, EACCES = 13, ECONNREFUSED = 111;

    private final int errno;

    ConnectFailedException(Path socket, int errno, Throwable cause) {
        super("cannot connect to " + socket + ": " + describe(errno, cause), cause);
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }

    private static String describe(int errno, Throwable cause) {
        return switch (errno) {
            case ENOENT -> "no such socket (is vfio-exportd running?), " + Errno.describe(errno);
            case ECONNREFUSED -> "connection refused (no server listens there), " + Errno.describe(errno);
            case EACCES -> "permission denied, " + Errno.describe(errno);
            case 0 -> String.valueOf(cause.getMessage());
            default -> Errno.describe(errno);
        };
    }
}

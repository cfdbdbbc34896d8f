package org.vfioexport.client;

import org.vfioexport.ffm.posix.Errno;

import java.io.IOException;
import java.nio.file.Path;

/** No connection to the daemon's socket: the path, the errno (0 when unknown) and what it usually means. */
public final class ConnectFailedException extends IOException {
    private final int errno;

    ConnectFailedException(Path socket, int errno, Throwable cause) {
        super("cannot connect to " + socket + ": " + describe(errno, cause), cause);
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }

    private static String describe(int errno, Throwable cause) {
        if (errno == 0) return String.valueOf(cause.getMessage());
        return switch (Errno.of(errno)) {
            case ENOENT -> "no such socket (is vfio-exportd running?), " + Errno.describe(errno);
            case ECONNREFUSED -> "connection refused (no server listens there), " + Errno.describe(errno);
            case EACCES -> "permission denied, " + Errno.describe(errno);
            case null, default -> Errno.describe(errno);
        };
    }
}

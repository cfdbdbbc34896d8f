package org.vfioexport.kernel;

import org.vfioexport.ffm.posix.Errno;

/**
 * The kernel (simulated or real) refused a call: which operation, and the errno Linux gives for it.
 * Both backends throw exactly this, so callers and tests compare errno values, never messages.
 */
public final class KernelException extends Exception {
    private final String op;
    private final int errno;

    public KernelException(String op, int errno, String detail) {
        super(op + ": " + Errno.nameOf(errno) + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"));
        this.op = op;
        this.errno = errno;
    }

    public KernelException(String op, Errno errno) {
        this(op, errno.value, null);
    }

    public KernelException(String op, Errno errno, String detail) {
        this(op, errno.value, detail);
    }

    /** The uAPI operation, e.g. {@code VFIO_DEVICE_FEATURE_DMA_BUF}. */
    public String op() {
        return op;
    }

    public int errno() {
        return errno;
    }

    public String errnoName() {
        return Errno.nameOf(errno);
    }
}

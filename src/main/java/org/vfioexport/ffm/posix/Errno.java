package org.vfioexport.ffm.posix;

/** The few errno values that the downcalls themselves act on (retry, would-block). Names for all live in the kernel SPI. */
final class Errno {
    private Errno() {}

    static final int EINTR = 4, EAGAIN = 11, EMSGSIZE = 90, ENAMETOOLONG = 36;
}

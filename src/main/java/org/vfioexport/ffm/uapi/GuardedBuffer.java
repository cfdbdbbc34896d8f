package org.vfioexport.ffm.uapi;

import org.vfioexport.ffm.posix.Posix;
import org.vfioexport.ffm.posix.PosixException;

import java.lang.foreign.MemorySegment;

/**
 * {@code length} bytes that end exactly where an inaccessible page begins, so that the kernel reading past them
 * gets EFAULT. The guard is 64 KiB: a whole number of pages with 4 KiB, 16 KiB and 64 KiB pages alike.
 */
final class GuardedBuffer implements AutoCloseable {
    private static final long GUARD = 64 * 1024;

    private final MemorySegment mapping;
    private final MemorySegment bytes;

    private GuardedBuffer(MemorySegment mapping, MemorySegment bytes) {
        this.mapping = mapping;
        this.bytes = bytes;
    }

    static GuardedBuffer endingAt(long length) throws PosixException {
        long data = (length + GUARD - 1) / GUARD * GUARD;
        MemorySegment m = Posix.mmapAnonymous(data + GUARD, Posix.PROT_READ | Posix.PROT_WRITE);
        try {
            Posix.mprotect(m.asSlice(data, GUARD), Posix.PROT_NONE);
        } catch (PosixException e) {
            Posix.munmap(m);
            throw e;
        }
        return new GuardedBuffer(m, m.asSlice(data - length, length));
    }

    MemorySegment bytes() {
        return bytes;
    }

    @Override
    public void close() throws PosixException {
        Posix.munmap(mapping);
    }
}

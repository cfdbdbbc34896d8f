package org.vfioexport.ffm.posix;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one errno table: names both ways, and failures that say which errno by name and number. */
class ErrnoTest {
    @TempDir
    Path dir;

    @Test
    void aFailedCallNamesItsErrno() {
        Path missing = dir.resolve("missing");
        PosixException e = assertThrows(PosixException.class, () -> Posix.open(missing.toString(), Posix.O_RDONLY | Posix.O_CLOEXEC, 0));
        assertEquals(Errno.ENOENT.value, e.errno());
        assertEquals("ENOENT", e.errnoName());
        assertTrue(e.getMessage().endsWith("failed: ENOENT (errno 2)"), e.getMessage());
    }

    @Test
    void describeGivesNameAndNumber() {
        assertEquals("EINVAL (errno 22)", Errno.describe(22));
        assertEquals("E4095 (errno 4095)", Errno.describe(4095), "a value the table does not list keeps its number");
        assertEquals("open failed: EINVAL (errno 22)", new PosixException("open", 22).getMessage());
    }

    @Test
    void valuesAndNamesMapBothWays() {
        for (Errno e : Errno.values()) {
            assertSame(e, Errno.of(e.value), e.name());
            assertEquals(e.name(), Errno.nameOf(e.value));
            assertTrue(e.is(e.value));
        }
        assertNull(Errno.of(4095));
    }
}

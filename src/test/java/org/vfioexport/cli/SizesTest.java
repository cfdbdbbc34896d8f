package org.vfioexport.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SizesTest {
    @Test
    void parsesDecimalHexAndBinarySuffixes() {
        assertEquals(4096, Sizes.parse("4096"));
        assertEquals(0x2000, Sizes.parse("0x2000"));
        assertEquals(0x2B, Sizes.parse("0x2B"), "a hex B is a digit, not bytes");
        assertEquals(4096, Sizes.parse("4K"));
        assertEquals(2L << 20, Sizes.parse("2M"));
        assertEquals(2L << 20, Sizes.parse("2MiB"));
        assertEquals(1L << 30, Sizes.parse("1g"));
        assertEquals(1L << 20, Sizes.parse("0x1M"));
        assertEquals(-1L, Sizes.parse("0xffffffffffffffff"));
        assertEquals(12, Sizes.parse("12B"));
    }

    @Test
    void rejectsWhatIsNotASize() {
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse("-1"));
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse("2X"));
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse(""));
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse("0x10000000000000000"));
        assertThrows(IllegalArgumentException.class, () -> Sizes.parse("16E"));
    }

    @Test
    void printsWholeUnits() {
        assertEquals("16 KiB", Sizes.human(16384));
        assertEquals("64 MiB", Sizes.human(64L << 20));
        assertEquals("4097 B", Sizes.human(4097));
        assertEquals("0 B", Sizes.human(0));
    }
}

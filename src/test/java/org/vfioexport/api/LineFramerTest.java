package org.vfioexport.api;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class LineFramerTest {
    private final List<String> lines = new ArrayList<>();
    private int overLimit;

    private LineFramer framer(int max) {
        return new LineFramer(max, b -> lines.add(b.toString()), () -> overLimit++);
    }

    @Test
    void cutsLinesAcrossChunksAndDropsCarriageReturns() {
        LineFramer f = framer(100);
        f.handle(Buffer.buffer("ab"));
        f.handle(Buffer.buffer("c\r\nde\n\nf"));
        f.handle(Buffer.buffer("g\n"));
        assertEquals(List.of("abc", "de", "", "fg"), lines);
        assertEquals(0, overLimit);
    }

    @Test
    void aLineOfExactlyTheLimitPassesOneMoreByteStops() {
        LineFramer f = framer(4);
        f.handle(Buffer.buffer("abcd\r\nabcde\nnext\n"));
        assertEquals(List.of("abcd"), lines);
        assertEquals(1, overLimit);
    }

    @Test
    void anUnfinishedLineOverTheLimitStopsBeforeItsNewlineArrives() {
        LineFramer f = framer(4);
        f.handle(Buffer.buffer("abcdef"));
        assertEquals(1, overLimit);
        f.handle(Buffer.buffer("\nok\n"));
        assertEquals(List.of(), lines, "nothing after the limit was hit");
    }
}

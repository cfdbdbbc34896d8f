package org.vfioexport.api;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void crossingChunkBoundariesKeepsCarriageReturnsAndLimits() {
        LineFramer f = framer(4);
        f.handle(Buffer.buffer("ab"));
        f.handle(Buffer.buffer("cd\r")); // the \r of a full-length line arrives before its \n
        f.handle(Buffer.buffer("\n"));
        f.handle(Buffer.buffer("x\r\r"));
        f.handle(Buffer.buffer("\ny"));
        f.handle(Buffer.buffer("\n"));
        assertEquals(List.of("abcd", "x\r", "y"), lines, "only the one \r right before \n is dropped");
        assertEquals(0, overLimit);
        f.handle(Buffer.buffer("abc"));
        f.handle(Buffer.buffer("de"));
        assertEquals(1, overLimit, "the limit holds across chunks, before the newline");
    }

    /**
     * A line that arrives one byte at a time costs work in proportion to its length: each byte is scanned once
     * and copied a bounded number of times, however long the unfinished line already is. Rescanning and copying
     * the pending line per chunk made this quadratic (about 2 billion byte visits for 65,000 bytes).
     */
    @Test
    void aLineArrivingByteByByteIsScannedOnceAndCopiedBoundedlyOften() {
        int n = 65_000;
        LineFramer f = framer(65_536);
        Buffer one = Buffer.buffer("a");
        for (int i = 0; i < n; i++) f.handle(one);
        f.handle(Buffer.buffer("\n"));
        assertEquals(1, lines.size());
        assertEquals(n, lines.get(0).length());
        assertEquals(n + 1, f.scanned(), "every byte scanned exactly once");
        // appended once, moved by the pending array's doublings (less than once on average), copied out once
        assertTrue(f.copied() <= 4L * n, "bytes copied: " + f.copied() + " for a line of " + n);
    }

    @Test
    void manyShortLinesInOneChunkAreScannedOnceAndCopiedOnce() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 10_000; i++) sb.append("line ").append(i).append('\n');
        Buffer all = Buffer.buffer(sb.toString());
        LineFramer f = framer(100);
        f.handle(all);
        assertEquals(10_000, lines.size());
        assertEquals("line 9999", lines.get(9_999));
        assertEquals(all.length(), f.scanned());
        assertTrue(f.copied() <= all.length(), "bytes copied: " + f.copied() + " of " + all.length());
    }

    @Test
    void aPauseStopsDeliveryMidChunkAndAResumeGoesOnInOrder() {
        LineFramer[] f = new LineFramer[1];
        f[0] = new LineFramer(100, b -> {
            lines.add(b.toString());
            if (b.toString().equals("b")) f[0].pause();
        }, () -> overLimit++);
        f[0].handle(Buffer.buffer("a\nb\nc\nd"));
        assertEquals(List.of("a", "b"), lines, "nothing after the pause");
        f[0].handle(Buffer.buffer("e\nf\n")); // delivered by the socket before its own pause took effect
        assertEquals(List.of("a", "b"), lines);
        f[0].resume();
        assertEquals(List.of("a", "b", "c", "de", "f"), lines);
        f[0].handle(Buffer.buffer("g\n"));
        assertEquals(List.of("a", "b", "c", "de", "f", "g"), lines);
        assertEquals(0, overLimit);
    }

    @Test
    void aResumeFromInsideALineGoesOnWithTheSameChunk() {
        LineFramer[] f = new LineFramer[1];
        f[0] = new LineFramer(100, b -> {
            lines.add(b.toString());
            f[0].pause();
            f[0].resume();
        }, () -> overLimit++);
        f[0].handle(Buffer.buffer("a\nb\nc\n"));
        assertEquals(List.of("a", "b", "c"), lines);
    }

    /** A socket resumed from inside a line's handling may hand over its queued chunk at once: it waits its turn. */
    @Test
    void aChunkDeliveredFromInsideALineWaitsForTheRestOfTheChunkBeingCut() {
        LineFramer[] f = new LineFramer[1];
        f[0] = new LineFramer(100, b -> {
            lines.add(b.toString());
            if (b.toString().equals("b")) f[0].handle(Buffer.buffer("d\ne"));
        }, () -> overLimit++);
        f[0].handle(Buffer.buffer("a\nb\nc"));
        f[0].handle(Buffer.buffer("\nf\n"));
        assertEquals(List.of("a", "b", "cd", "e", "f"), lines); // the stream is a b cd e f, in that order
    }

    @Test
    void aPauseInsideAReentrantDeliveryKeepsTheOrder() {
        LineFramer[] f = new LineFramer[1];
        f[0] = new LineFramer(100, b -> {
            lines.add(b.toString());
            if (b.toString().equals("a")) {
                f[0].handle(Buffer.buffer("x\ny\n"));
                f[0].pause();
            }
        }, () -> overLimit++);
        f[0].handle(Buffer.buffer("a\nb\n"));
        assertEquals(List.of("a"), lines);
        f[0].resume();
        assertEquals(List.of("a", "b", "x", "y"), lines);
    }
}

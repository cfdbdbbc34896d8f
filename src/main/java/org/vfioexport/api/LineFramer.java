package org.vfioexport.api;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;

import java.util.Arrays;

/**
 * NDJSON framing of an input stream: cuts lines at {@code \n}, drops a trailing {@code \r}, and enforces the line
 * limit while the line is still arriving, so a client cannot make the server buffer more than the limit.
 * After the limit is exceeded the framer stops: the connection is about to be closed.
 *
 * <p>Work is linear in the input whatever the chunking: each byte is scanned once, when its chunk arrives, and
 * the unfinished line is only ever appended to (amortised doubling), never rescanned or copied per chunk. A line
 * is copied out once, when its {@code \n} arrives. A client trickling a long line byte by byte thus costs what
 * the same line sent at once costs.
 *
 * <p>{@link #pause()} stops the delivery of lines at once, even in the middle of a chunk: the rest of the chunk
 * stays here, uncut, until {@link #resume()}. The socket is paused with it, so what the framer holds is at most
 * the chunk that was being cut (and any the socket delivered before its pause took effect).
 */
public final class LineFramer implements Handler<Buffer> {
    /** Room kept for the start of the next line; a larger pending array is dropped once its line is complete. */
    private static final int INITIAL = 256;

    private final int maxLineBytes;
    private final Handler<Buffer> lines;
    private final Runnable overLimit;
    /** The unfinished line: the bytes after the last {@code \n} seen, {@code pendingLength} of them. */
    private byte[] pending = new byte[INITIAL];
    private int pendingLength;
    private boolean stopped;
    /** Bytes examined for {@code \n} and bytes copied (into the pending line, on growth, into a line): for tests. */
    private long scanned, copied;
    /** While paused: the chunk not yet cut, from {@code heldFrom}. */
    private Buffer held;
    private int heldFrom;
    private boolean paused;
    private boolean cutting;

    public LineFramer(int maxLineBytes, Handler<Buffer> lines, Runnable overLimit) {
        this.maxLineBytes = maxLineBytes;
        this.lines = lines;
        this.overLimit = overLimit;
    }

    @Override
    public void handle(Buffer chunk) {
        if (stopped) return;
        // while paused, or delivered re-entrantly from inside a line's handling (a socket resumed there may hand
        // over what it queued at once): kept, behind what is held, so lines leave in stream order
        if (paused || cutting || held != null) {
            hold(chunk, 0);
            if (!paused && !cutting) resume();
            return;
        }
        cut(chunk, 0);
    }

    /** Stops delivering lines until {@link #resume()}; takes effect after the line being delivered. */
    public void pause() {
        paused = true;
    }

    /** Goes on with what is held, then with the stream. */
    public void resume() {
        paused = false;
        if (cutting || held == null) return; // a resume from inside a line's handling: the loop goes on by itself
        Buffer h = held;
        int from = heldFrom;
        held = null;
        cut(h, from);
    }

    /** Appends {@code chunk[from..]} to what is held. */
    private void hold(Buffer chunk, int from) {
        Buffer rest = from == 0 ? chunk : chunk.getBuffer(from, chunk.length());
        held = held == null ? rest : held.getBuffer(heldFrom, held.length()).appendBuffer(rest);
        heldFrom = 0;
    }

    private void cut(Buffer chunk, int from) {
        cutting = true;
        try {
            cutLines(chunk, from);
            // what arrived while this chunk was cut, in order, unless a line paused the stream meanwhile
            while (!paused && !stopped && held != null) {
                Buffer h = held;
                int f = heldFrom;
                held = null;
                cutLines(h, f);
            }
        } finally {
            cutting = false;
        }
    }

    private void cutLines(Buffer chunk, int from) {
        int len = chunk.length();
        int start = from; // the first byte of chunk not yet part of a delivered line
        for (int i = from; i < len; i++) {
            scanned++;
            if (chunk.getByte(i) != '\n') continue;
            deliver(chunk, start, i);
            if (stopped) return;
            start = i + 1;
            if (paused) {
                // the rest of this chunk goes before anything held (which arrived after it)
                if (start < len) {
                    Buffer before = held;
                    int beforeFrom = heldFrom;
                    held = chunk.getBuffer(start, len);
                    heldFrom = 0;
                    if (before != null) hold(before, beforeFrom);
                }
                return;
            }
        }
        if (start == len) return;
        // the rest starts (or continues) the unfinished line; one that can no longer fit the limit never will
        if (overLimit(pendingLength + len - start, chunk.getByte(len - 1))) {
            stop();
            return;
        }
        append(chunk, start, len);
    }

    /** The pending bytes followed by {@code chunk[from, to)} are one line (its {@code \n} at {@code to}). */
    private void deliver(Buffer chunk, int from, int to) {
        int length = pendingLength + to - from;
        byte last = to > from ? chunk.getByte(to - 1) : pendingLength > 0 ? pending[pendingLength - 1] : 0;
        if (overLimit(length, last)) {
            stop();
            return;
        }
        if (last == '\r') length--;
        byte[] line = new byte[length];
        int fromPending = Math.min(pendingLength, length);
        System.arraycopy(pending, 0, line, 0, fromPending);
        if (length > fromPending) chunk.getBytes(from, from + length - fromPending, line, fromPending);
        copied += length;
        pendingLength = 0;
        if (pending.length > INITIAL) pending = new byte[INITIAL]; // an idle connection keeps no long line's array
        lines.handle(Buffer.buffer(line));
    }

    /** Whether {@code length} bytes ending in {@code last} make a line longer than the limit, not counting a final \r. */
    private boolean overLimit(int length, byte last) {
        return length - (last == '\r' ? 1 : 0) > maxLineBytes;
    }

    private void append(Buffer chunk, int from, int to) {
        int needed = pendingLength + to - from;
        if (needed > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(needed, Math.min(2 * pending.length, maxLineBytes + 1)));
            copied += pendingLength;
        }
        chunk.getBytes(from, to, pending, pendingLength);
        copied += to - from;
        pendingLength = needed;
    }

    private void stop() {
        stopped = true;
        pending = new byte[0];
        pendingLength = 0;
        overLimit.run();
    }

    long scanned() {
        return scanned;
    }

    long copied() {
        return copied;
    }
}

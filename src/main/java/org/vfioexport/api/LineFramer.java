package org.vfioexport.api;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;

/**
 * NDJSON framing of an input stream: cuts lines at {@code \n}, drops a trailing {@code \r}, and enforces the line
 * limit while the line is still arriving, so a client cannot make the server buffer more than the limit.
 * After the limit is exceeded the framer stops: the connection is about to be closed.
 *
 * <p>{@link #pause()} stops the delivery of lines at once, even in the middle of a chunk: the rest stays here,
 * unparsed, until {@link #resume()}. The socket is paused with it, so what the framer holds is at most the
 * chunk that was being cut.
 */
public final class LineFramer implements Handler<Buffer> {
    private final int maxLineBytes;
    private final Handler<Buffer> lines;
    private final Runnable overLimit;
    private Buffer pending = Buffer.buffer();
    private boolean stopped;
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
        pending.appendBuffer(chunk);
        cut();
    }

    /** Stops delivering lines until {@link #resume()}. */
    public void pause() {
        paused = true;
    }

    /** Delivers the lines held while paused, then goes on with the stream. */
    public void resume() {
        if (!paused) return;
        paused = false;
        if (!cutting) cut();
    }

    private void cut() {
        cutting = true;
        try {
            int start = 0;
            int len = pending.length();
            for (int i = 0; i < len && !stopped && !paused; i++) {
                if (pending.getByte(i) != '\n') continue;
                int end = i;
                if (end > start && pending.getByte(end - 1) == '\r') end--;
                if (end - start > maxLineBytes) {
                    stop();
                    return;
                }
                Buffer line = pending.getBuffer(start, end);
                start = i + 1;
                lines.handle(line);
            }
            if (stopped) return;
            pending = start == len ? Buffer.buffer() : pending.getBuffer(start, len);
            // an unfinished line already over the limit (plus room for "\r") will never become acceptable
            if (!paused && pending.length() > maxLineBytes + 1) stop();
        } finally {
            cutting = false;
        }
    }

    private void stop() {
        stopped = true;
        pending = Buffer.buffer();
        overLimit.run();
    }
}

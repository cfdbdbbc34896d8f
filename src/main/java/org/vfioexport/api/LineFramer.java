package org.vfioexport.api;

import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;

/**
 * NDJSON framing of an input stream: cuts lines at {@code \n}, drops a trailing {@code \r}, and enforces the line
 * limit while the line is still arriving, so a client cannot make the server buffer more than the limit.
 * After the limit is exceeded the framer stops: the connection is about to be closed.
 */
public final class LineFramer implements Handler<Buffer> {
    private final int maxLineBytes;
    private final Handler<Buffer> lines;
    private final Runnable overLimit;
    private Buffer pending = Buffer.buffer();
    private boolean stopped;

    public LineFramer(int maxLineBytes, Handler<Buffer> lines, Runnable overLimit) {
        this.maxLineBytes = maxLineBytes;
        this.lines = lines;
        this.overLimit = overLimit;
    }

    @Override
    public void handle(Buffer chunk) {
        if (stopped) return;
        pending.appendBuffer(chunk);
        int start = 0;
        int len = pending.length();
        for (int i = 0; i < len && !stopped; i++) {
            if (pending.getByte(i) != '\n') continue;
            int end = i;
            if (end > start && pending.getByte(end - 1) == '\r') end--;
            if (end - start > maxLineBytes) {
                stop();
                return;
            }
            lines.handle(pending.getBuffer(start, end));
            start = i + 1;
        }
        if (stopped) return;
        pending = start == len ? Buffer.buffer() : pending.getBuffer(start, len);
        // an unfinished line already over the limit (plus room for "\r") will never become acceptable
        if (pending.length() > maxLineBytes + 1) stop();
    }

    private void stop() {
        stopped = true;
        pending = Buffer.buffer();
        overLimit.run();
    }
}

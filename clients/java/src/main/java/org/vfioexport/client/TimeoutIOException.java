package org.vfioexport.client;

import java.io.IOException;
import java.util.concurrent.TimeoutException;

/** A bounded wait of the client ran out: no response, event or room to send in time. */
public final class TimeoutIOException extends IOException {
    public TimeoutIOException(String message) {
        super(message, new TimeoutException(message));
    }
}

package org.vfioexport.app;

/** The daemon cannot start; the message says why in words a person can act on. */
public final class StartupException extends Exception {
    public StartupException(String message) {
        super(message);
    }

    public StartupException(String message, Throwable cause) {
        super(message, cause);
    }
}

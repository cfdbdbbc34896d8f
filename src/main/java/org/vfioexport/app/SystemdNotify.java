package org.vfioexport.app;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.vfioexport.ffm.posix.Host;
import org.vfioexport.ffm.posix.PosixException;

import java.nio.charset.StandardCharsets;

/**
 * systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram of {@code KEY=value} lines to the
 * AF_UNIX socket named by {@code NOTIFY_SOCKET} (a path, or {@code @name} for an abstract socket). Outside systemd
 * the variable is unset and nothing is sent. Failures are logged, never fatal: the service runs either way.
 */
final class SystemdNotify {
    private static final Logger log = LoggerFactory.getLogger(SystemdNotify.class);

    private final String socket;

    private SystemdNotify(String socket) {
        this.socket = socket;
    }

    /** From the environment; {@link #enabled()} is false when the daemon was not started by systemd. */
    static SystemdNotify fromEnvironment() {
        String s = System.getenv("NOTIFY_SOCKET");
        return new SystemdNotify(s == null || s.isEmpty() ? null : s);
    }

    boolean enabled() {
        return socket != null;
    }

    /** The socket accepts connections: {@code READY=1}, with our pid (systemd may not know it under a wrapper). */
    void ready(String status) {
        send("READY=1\nMAINPID=" + ProcessHandle.current().pid() + "\nSTATUS=" + status + "\n");
    }

    void stopping() {
        send("STOPPING=1\nSTATUS=stopping\n");
    }

    private void send(String state) {
        if (socket == null) return;
        try {
            Host.sendDatagram(socket, state.getBytes(StandardCharsets.UTF_8));
        } catch (PosixException e) {
            log.warn("cannot notify systemd on {}: {}", socket, e.getMessage());
        }
    }
}

package org.vfioexport.app;

import org.vfioexport.ffm.posix.Host;
import org.vfioexport.ffm.posix.PosixException;
import org.vfioexport.ffm.posix.UnixSocket;

import java.nio.file.Path;
import java.util.Map;

/**
 * systemd socket activation (sd_listen_fds(3)): when {@code LISTEN_PID} is this process and {@code LISTEN_FDS} is at
 * least 1, the listening socket is fd 3 (SD_LISTEN_FDS_START), bound and listening already, owned by systemd (or
 * {@code systemd-socket-activate}). The daemon serves on it as it is: it does not bind, chmod, chgrp or unlink it
 * (the .socket unit's SocketMode=/SocketGroup= decide who may connect), and takes no socket lock, since systemd
 * holds the socket for every run of the service. The daemon's server channel takes the socket over (and closes it
 * at shutdown); this record only carries it there.
 */
public record SocketActivation(UnixSocket socket, Path path) {
    /** SD_LISTEN_FDS_START. */
    static final int FIRST_FD = 3;

    /**
     * The inherited socket, or null when this process was not socket-activated. Checks that fd 3 is one listening
     * AF_UNIX SOCK_STREAM socket bound to a path, sets it close-on-exec and removes the LISTEN_* variables (as
     * sd_listen_fds(1) does, so no child takes the socket for its own).
     */
    public static SocketActivation fromEnvironment(Map<String, String> env, long pid) throws StartupException {
        String listenPid = env.get("LISTEN_PID");
        String listenFds = env.get("LISTEN_FDS");
        if (listenPid == null || listenFds == null) return null;
        try {
            if (Long.parseLong(listenPid.trim()) != pid) return null; // meant for another process
        } catch (NumberFormatException e) {
            return null;
        }
        int n;
        try {
            n = Integer.parseInt(listenFds.trim());
        } catch (NumberFormatException e) {
            throw new StartupException("socket activation: LISTEN_FDS=" + listenFds + " is not a number");
        }
        if (n < 1) return null;
        if (n > 1) {
            throw new StartupException("socket activation: " + n + " sockets passed (LISTEN_FDS=" + n
                    + "); vfio-exportd serves exactly one (one ListenStream= in the .socket unit)");
        }
        SocketActivation activation = check(UnixSocket.adoptSocket(FIRST_FD));
        for (String v : new String[] {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) Host.unsetenv(v);
        return activation;
    }

    /** The inherited fd as a listening Unix stream socket bound to a path, made close-on-exec; refused otherwise. */
    static SocketActivation check(UnixSocket socket) throws StartupException {
        String what = "socket activation: fd " + FIRST_FD;
        try {
            if (!socket.isUnixStream()) {
                throw new StartupException(what + " is not a Unix stream socket"
                        + "; the .socket unit needs ListenStream=/absolute/path");
            }
            if (!socket.isListening()) {
                throw new StartupException(what + " is a Unix stream socket that is not listening");
            }
            String name = socket.localName();
            if (name.isEmpty() || name.startsWith("@")) {
                throw new StartupException(what + " is not bound to a path (" + (name.isEmpty() ? "unnamed" : name)
                        + "); the .socket unit needs ListenStream=/absolute/path");
            }
            socket.setCloseOnExec();
            return new SocketActivation(socket, Path.of(name));
        } catch (PosixException e) {
            throw new StartupException(what + " is not a listening Unix socket: " + e.errnoDescription(), e);
        }
    }
}

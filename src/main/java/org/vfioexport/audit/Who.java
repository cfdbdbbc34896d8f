package org.vfioexport.audit;

import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.Host;
import org.vfioexport.ffm.posix.PosixException;

/**
 * Who acted: a process as the kernel identified it. {@code exe} is the target of {@code /proc/PID/exe} read when
 * the connection was accepted (null when unreadable: a peer in another pid namespace reports pid 0, and a
 * non-root daemon may not read another user's link), so a pid reused later cannot change it.
 */
public record Who(long pid, int uid, int gid, String exe) {
    /** A peer from its SO_PEERCRED credentials; reads its executable now. */
    public static Who of(int pid, int uid, int gid) {
        return new Who(pid, uid, gid, pid > 0 ? exeOf(pid) : null);
    }

    /** This process (the daemon). */
    public static Who self() {
        try {
            java.nio.file.Path proc = java.nio.file.Path.of("/proc/self");
            int uid = (Integer) java.nio.file.Files.getAttribute(proc, "unix:uid");
            int gid = (Integer) java.nio.file.Files.getAttribute(proc, "unix:gid");
            long pid = ProcessHandle.current().pid();
            return new Who(pid, uid, gid, exeOf(pid));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot read this process's credentials", e);
        }
    }

    /** The target of {@code /proc/PID/exe}, or null. */
    static String exeOf(long pid) {
        try {
            return Host.readlink(java.nio.file.Path.of("/proc/" + pid + "/exe"));
        } catch (PosixException e) {
            return null;
        }
    }

    /** Adds {@code pid}, {@code uid}, {@code gid} and {@code exe} (when known) to {@code record}. */
    JsonObject putInto(JsonObject record) {
        record.put("pid", pid).put("uid", Integer.toUnsignedLong(uid)).put("gid", Integer.toUnsignedLong(gid));
        if (exe != null) record.put("exe", exe);
        return record;
    }

    /** "uid 1000, pid 4242, /usr/bin/spdk_tgt": for log lines. */
    static String describe(JsonObject r) {
        String exe = r.getString("exe");
        return "uid " + r.getValue("uid") + ", pid " + r.getValue("pid") + (exe == null ? "" : ", " + exe);
    }
}

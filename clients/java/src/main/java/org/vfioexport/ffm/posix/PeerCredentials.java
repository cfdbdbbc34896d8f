package org.vfioexport.ffm.posix;

/**
 * The peer of a Unix socket as the kernel recorded it at connect(2): SO_PEERCRED gives the pid, uid and primary
 * gid; SO_PEERGROUPS (Linux 4.13+) the supplementary groups, empty where the kernel cannot say.
 */
public record PeerCredentials(int pid, int uid, int gid, int[] groups) {
    public PeerCredentials(int pid, int uid, int gid) {
        this(pid, uid, gid, new int[0]);
    }

    /** True if {@code g} is the primary gid or one of the supplementary groups. */
    public boolean inGroup(int g) {
        if (g == gid) return true;
        for (int x : groups) if (x == g) return true;
        return false;
    }
}

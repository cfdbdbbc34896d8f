package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.Posix;

import java.util.HashSet;
import java.util.Set;

/**
 * Who may use the service, and how much. A client is identified by the credentials the kernel recorded at
 * {@code connect(2)} (SO_PEERCRED). A client is allowed when its uid is in {@code allow_uids}, its primary gid in
 * {@code allow_gids}, or (with {@code allow_daemon_user}) it runs as the daemon's own user. An allowed client
 * sees and may use every device; any other client sees none.
 */
public record Policy(Set<Integer> allowUids, Set<Integer> allowGids, boolean allowDaemonUser, int daemonUid,
                     int maxExportsPerClient, int subscriberQueue) {

    public static final int DEFAULT_MAX_EXPORTS = 4096;
    public static final int DEFAULT_SUBSCRIBER_QUEUE = 4096;

    /** The policy of the configuration's {@code policy} object (absent: root and the daemon's user only). */
    public static Policy fromConfig(JsonObject policy, int daemonUid) {
        JsonObject p = policy == null ? new JsonObject() : policy;
        return new Policy(ints(p.getJsonArray("allow_uids", new JsonArray().add(0))),
                ints(p.getJsonArray("allow_gids", new JsonArray())),
                p.getBoolean("allow_daemon_user", true), daemonUid,
                p.getInteger("max_exports_per_client", DEFAULT_MAX_EXPORTS),
                p.getInteger("subscriber_queue", DEFAULT_SUBSCRIBER_QUEUE));
    }

    public boolean allows(Posix.PeerCred c) {
        return allowUids.contains(c.uid()) || allowGids.contains(c.gid()) || (allowDaemonUser && c.uid() == daemonUid);
    }

    private static Set<Integer> ints(JsonArray a) {
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i < a.size(); i++) out.add(a.getInteger(i));
        return Set.copyOf(out);
    }
}

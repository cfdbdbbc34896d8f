package org.vfioexport.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.PeerCredentials;

import java.util.HashSet;
import java.util.Set;

/**
 * Who may use the service, and how much. A client is identified by the credentials the kernel recorded at
 * {@code connect(2)} (SO_PEERCRED, and SO_PEERGROUPS for its supplementary groups). A client is allowed when its
 * uid is in {@code allow_uids}, its primary gid or one of its supplementary groups in {@code allow_gids}, or (with
 * {@code allow_daemon_user}) it runs as the daemon's own user. An allowed client
 * sees and may use every device; any other client sees none.
 *
 * <p>Limits come in two kinds. Per uid, summed over all of that user's connections, so that opening another
 * connection never buys more: connections, exports, subscriptions, fds in flight. Per connection: exports, and
 * the two that pace input (requests in flight, queued output). The per-uid defaults are shares of the daemon's
 * own RLIMIT_NOFILE, so that one user cannot exhaust the daemon's fd table: connections take 1/8 of it, exports
 * (each one fd held by the daemon, and one more while its response waits to be sent) 1/4.
 */
public record Policy(Set<Integer> allowUids, Set<Integer> allowGids, boolean allowDaemonUser, int daemonUid,
                     int maxExportsPerClient, int subscriberQueue, Limits limits) {

    public static final int DEFAULT_MAX_EXPORTS = 4096;
    public static final int DEFAULT_SUBSCRIBER_QUEUE = 4096;
    /** The kernel's SCM_MAX_FD: at most this many fds ride on one {@code sendmsg}. */
    public static final int SCM_MAX_FD = 253;

    /** The limits that bound what one user, or one connection, can make the daemon hold. */
    public record Limits(int maxConnectionsPerUid, int maxExportsPerUid, int maxSubscriptionsPerUid,
                         int maxFdsInFlightPerUid, int maxRequestsInFlightPerClient, int maxOutputBytesPerClient,
                         int maxBatch, int maxImportersPerUid) {

        /** The defaults for a daemon whose RLIMIT_NOFILE (soft) is {@code nofile}. */
        public static Limits defaults(long nofile) {
            return new Limits((int) Math.max(4, Math.min(256, nofile / 8)), (int) Math.max(8, Math.min(16384, nofile / 4)),
                    64, 1024, 1024, 1 << 20, 1024, 64);
        }
    }

    /** The policy of the configuration's {@code policy} object (absent: root and the daemon's user only). */
    public static Policy fromConfig(JsonObject policy, int daemonUid, long nofile) {
        JsonObject p = policy == null ? new JsonObject() : policy;
        Limits d = Limits.defaults(nofile);
        Limits limits = new Limits(
                positive(p, "max_connections_per_uid", d.maxConnectionsPerUid()),
                positive(p, "max_exports_per_uid", d.maxExportsPerUid()),
                positive(p, "max_subscriptions_per_uid", d.maxSubscriptionsPerUid()),
                positive(p, "max_fds_in_flight_per_uid", d.maxFdsInFlightPerUid()),
                positive(p, "max_requests_in_flight_per_client", d.maxRequestsInFlightPerClient()),
                positive(p, "max_output_bytes_per_client", d.maxOutputBytesPerClient()),
                positive(p, "max_batch", d.maxBatch()),
                positive(p, "max_importers_per_uid", d.maxImportersPerUid()));
        return new Policy(ints(p.getJsonArray("allow_uids", new JsonArray().add(0))),
                ints(p.getJsonArray("allow_gids", new JsonArray())),
                p.getBoolean("allow_daemon_user", true), daemonUid,
                positive(p, "max_exports_per_client", DEFAULT_MAX_EXPORTS),
                positive(p, "subscriber_queue", DEFAULT_SUBSCRIBER_QUEUE), limits);
    }

    /** By uid, by primary gid or any supplementary group (SO_PEERGROUPS), or as the daemon's own user. */
    public boolean allows(PeerCredentials c) {
        if (allowUids.contains(c.uid()) || (allowDaemonUser && c.uid() == daemonUid)) return true;
        for (int g : allowGids) if (c.inGroup(g)) return true;
        return false;
    }

    private static int positive(JsonObject p, String key, int dflt) {
        Integer v = p.getInteger(key, dflt);
        if (v == null || v < 1) throw new IllegalArgumentException("policy." + key + " must be a positive integer, got " + v);
        return v;
    }

    private static Set<Integer> ints(JsonArray a) {
        Set<Integer> out = new HashSet<>();
        for (int i = 0; i < a.size(); i++) out.add(a.getInteger(i));
        return Set.copyOf(out);
    }
}

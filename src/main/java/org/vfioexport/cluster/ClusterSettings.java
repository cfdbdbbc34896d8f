package org.vfioexport.cluster;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.api.Policy;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code cluster} section of the configuration (docs/configuration.md lists every key). Off unless
 * {@code enabled}: then nothing of the cluster is built, no Hazelcast class is loaded and no thread started.
 *
 * @param node             this daemon's name in the fleet, unique among the nodes (default: the host name)
 * @param name             the cluster's name: daemons join only a cluster of the same name
 * @param host             the address Hazelcast and the event bus bind and advertise (default 127.0.0.1)
 * @param port             Hazelcast's member port
 * @param busPort          the event bus's TCP port (0: any free one)
 * @param members          the TCP/IP member list, {@code host:port}; multicast and auto-detection are never used
 * @param joinTimeoutMs    how long start-up waits to join (or form) the cluster
 * @param failureTimeoutMs a member silent this long is removed: with the heartbeat it bounds {@code node.left}
 * @param requestTimeoutMs how long a request to another node (a view, a forwarded reset) waits for its answer
 * @param access           who may call the fleet methods ({@code allow_uids}, {@code allow_gids},
 *                         {@code allow_daemon_user}, as in {@code policy})
 */
public record ClusterSettings(boolean enabled, String node, String name, String host, int port, int busPort,
                              List<String> members, long joinTimeoutMs, long failureTimeoutMs, long requestTimeoutMs,
                              JsonObject access) {

    public static final ClusterSettings OFF = new ClusterSettings(false, null, null, null, 0, 0, List.of(), 0, 0, 0,
            new JsonObject());

    /** Hazelcast's heartbeat period: the failure timeout is checked this often. */
    public static final long HEARTBEAT_MS = 1000;

    /** The section as configured (null: off); a bad value throws IllegalArgumentException naming its key. */
    public static ClusterSettings fromConfig(JsonObject c) {
        if (c == null || !c.getBoolean("enabled", false)) return OFF;
        String node = c.getString("node", defaultNodeName());
        if (!node.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,62}")) {
            throw new IllegalArgumentException("cluster.node must be 1-63 letters, digits, '.', '_' or '-', got \"" + node + "\"");
        }
        String name = c.getString("name", "vfio-export");
        if (name.isEmpty()) throw new IllegalArgumentException("cluster.name must not be empty");
        String host = c.getString("host", "127.0.0.1");
        int port = range(c, "port", 5701, 1, 65535);
        int busPort = range(c, "bus_port", 0, 0, 65535);
        List<String> members = new ArrayList<>();
        JsonArray m = c.getJsonArray("members", new JsonArray());
        for (int i = 0; i < m.size(); i++) {
            String s = m.getString(i);
            int colon = s.lastIndexOf(':');
            if (colon <= 0 || !s.substring(colon + 1).matches("[0-9]{1,5}")
                    || Integer.parseInt(s.substring(colon + 1)) > 65535) {
                throw new IllegalArgumentException("cluster.members[" + i + "] must be host:port, got \"" + s + "\"");
            }
            members.add(s);
        }
        long join = range(c, "join_timeout_ms", 30_000, 1000, 600_000);
        long failure = range(c, "failure_timeout_ms", 10_000, 2000, 600_000);
        long request = range(c, "request_timeout_ms", 5000, 100, 600_000);
        JsonObject access = new JsonObject();
        for (String k : new String[] {"allow_uids", "allow_gids", "allow_daemon_user"}) {
            if (c.containsKey(k)) access.put(k, c.getValue(k));
        }
        return new ClusterSettings(true, node, name, host, port, busPort, List.copyOf(members), join, failure, request,
                access);
    }

    /** Who may call the fleet methods: the allow-lists of this section, with {@code policy}'s defaults. */
    public Policy accessPolicy(int daemonUid) {
        return Policy.fromConfig(access, daemonUid, 1024);
    }

    /** The longest time from a node's death to {@code node.left} on every other node (docs/protocol.md). */
    public long leaveBoundMs() {
        return failureTimeoutSeconds() * 1000 + 2 * HEARTBEAT_MS + FleetNode.MEMBERSHIP_POLL_MS;
    }

    /** Hazelcast counts the failure timeout in whole seconds. */
    public int failureTimeoutSeconds() {
        return (int) ((failureTimeoutMs + 999) / 1000);
    }

    /** The section as the daemon runs it, defaults filled in ({@code --check-config}). */
    public JsonObject effective() {
        if (!enabled) return new JsonObject().put("enabled", false);
        return new JsonObject().put("enabled", true).put("node", node).put("name", name).put("host", host)
                .put("port", port).put("bus_port", busPort).put("members", new JsonArray(members))
                .put("join_timeout_ms", joinTimeoutMs).put("failure_timeout_ms", failureTimeoutMs)
                .put("request_timeout_ms", requestTimeoutMs)
                .put("allow_uids", access.getJsonArray("allow_uids", new JsonArray().add(0)))
                .put("allow_gids", access.getJsonArray("allow_gids", new JsonArray()))
                .put("allow_daemon_user", access.getBoolean("allow_daemon_user", true));
    }

    private static int range(JsonObject c, String key, int dflt, int min, int max) {
        Integer v = c.getInteger(key, dflt);
        if (v == null || v < min || v > max) {
            throw new IllegalArgumentException("cluster." + key + " must be " + min + ".." + max + ", got " + v);
        }
        return v;
    }

    private static String defaultNodeName() {
        try {
            String h = InetAddress.getLocalHost().getHostName();
            int dot = h.indexOf('.');
            return dot > 0 ? h.substring(0, dot) : h;
        } catch (java.net.UnknownHostException e) {
            return "node-" + ProcessHandle.current().pid();
        }
    }
}

package org.vfioexport.cluster.hz;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.MultiMapConfig;
import com.hazelcast.config.NetworkConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.transport.Transport;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import org.vfioexport.cluster.ClusterSettings;

/**
 * The only class that names Hazelcast: a clustered Vert.x whose cluster manager is configured here, in code, from
 * the {@code cluster} section (no cluster.xml is read). TCP/IP join on the configured member list only: multicast
 * and auto-detection are off, so a daemon never joins a cluster nobody listed. Loaded only in cluster mode (the
 * start-up class preload skips this package otherwise).
 */
public final class HazelcastVertx {
    private HazelcastVertx() {}

    /** A clustered Vert.x and its cluster manager (the Vert.x SPI view of it: node ids, node info). */
    public record Clustered(Vertx vertx, ClusterManager manager) {}

    public static Future<Clustered> start(ClusterSettings s, Transport transport) {
        HazelcastClusterManager manager = new HazelcastClusterManager(config(s));
        EventBusOptions bus = new EventBusOptions().setHost(s.host()).setPort(s.busPort()).setClusterPublicHost(s.host())
                .setClusterNodeMetadata(new JsonObject().put("node", s.node()));
        return Vertx.builder().with(new VertxOptions().setEventBusOptions(bus)).withTransport(transport)
                .withClusterManager(manager).buildClustered().map(v -> new Clustered(v, manager));
    }

    static Config config(ClusterSettings s) {
        Config c = new Config();
        c.setClusterName(s.name());
        c.setProperty("hazelcast.phone.home.enabled", "false");
        c.setProperty("hazelcast.shutdownhook.enabled", "false"); // the daemon's stop leaves the cluster itself
        c.setProperty("hazelcast.logging.type", "slf4j");
        c.setProperty("hazelcast.socket.bind.any", "false");
        c.setProperty("hazelcast.wait.seconds.before.join", "0");
        c.setProperty("hazelcast.max.wait.seconds.before.join", "0");
        // failure detection: a member silent for failure_timeout is removed (a killed process usually sooner: its
        // connections fail at once and the master suspects it)
        c.setProperty("hazelcast.heartbeat.interval.seconds", Long.toString(ClusterSettings.HEARTBEAT_MS / 1000));
        c.setProperty("hazelcast.max.no.heartbeat.seconds", Integer.toString(s.failureTimeoutSeconds()));
        c.setProperty("hazelcast.max.join.seconds", Long.toString(Math.max(1, s.joinTimeoutMs() / 1000)));
        NetworkConfig n = c.getNetworkConfig();
        n.setPort(s.port()).setPortAutoIncrement(false);
        n.getInterfaces().setEnabled(true).addInterface(s.host());
        JoinConfig j = n.getJoin();
        j.getMulticastConfig().setEnabled(false);
        j.getAutoDetectionConfig().setEnabled(false);
        j.getTcpIpConfig().setEnabled(true).setConnectionTimeoutSeconds(2).setMembers(s.members());
        // the structures Vert.x keeps in the cluster (as in vertx-hazelcast's default-cluster.xml)
        c.addMultiMapConfig(new MultiMapConfig("__vertx.subs").setBackupCount(1)
                .setValueCollectionType(MultiMapConfig.ValueCollectionType.SET));
        c.addMapConfig(new MapConfig("__vertx.haInfo").setBackupCount(1));
        c.addMapConfig(new MapConfig("__vertx.nodeInfo").setBackupCount(1));
        return c;
    }
}

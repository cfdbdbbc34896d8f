package org.vfioexport.app;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.client.SocketPath;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The daemon's configuration file (JSON): {@code backend}, {@code socket}, {@code max_line_bytes}, {@code policy},
 * and the {@code sim} and {@code devices} sections the simulated kernel reads.
 */
public final class Config {
    public static final Path DEFAULT_FILE = Path.of("conf/vfio-export.json");

    private final JsonObject json;

    public Config(JsonObject json) {
        this.json = json;
    }

    public static Config load(Path file) throws StartupException {
        try {
            String text = Files.readString(file);
            ConfigSchema.bind(text);
            Config c = new Config(new JsonObject(text));
            c.validate();
            return c;
        } catch (ConfigSchema.InvalidConfigException e) {
            throw new StartupException("the configuration " + file + " is invalid: " + e.getMessage(), e);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new StartupException("no configuration file " + file + " (use --conf FILE)", e);
        } catch (IOException e) {
            throw new StartupException("cannot read the configuration " + file + ": " + e, e);
        } catch (DecodeException e) {
            throw new StartupException("the configuration " + file + " is not a JSON object: " + e.getMessage(), e);
        }
    }

    /**
     * Checks what the types alone do not (names and ranges), so that a wrong value is refused before anything is
     * created on disk. Also run on a configuration edited by command-line overrides.
     */
    public void validate() throws StartupException {
        if (!backend().equals("sim") && !backend().equals("linux")) {
            throw new StartupException("unknown backend '" + backend() + "' (backend: sim or linux)");
        }
        discipline();
        try {
            socket();
        } catch (SocketPath.NoDefaultException e) {
            throw new StartupException(e.getMessage(), e);
        }
        socketMode();
        socketGroup();
        if (maxLineBytes() < 1) throw new StartupException("max_line_bytes must be at least 1, got " + maxLineBytes());
        if (eventRetention() < 1) throw new StartupException("event_retention must be at least 1, got " + eventRetention());
        metricsPort();
        metricsHost();
        try {
            org.vfioexport.api.Policy.fromConfig(policy(), 0, 1024);
            audit();
            cluster();
            handshake();
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
    }

    /**
     * The configuration as the daemon would run it: every top-level key with its default filled in, the socket
     * absolute, and the policy's limits as computed for a daemon of {@code uid} whose RLIMIT_NOFILE is
     * {@code nofile}. Sections the backends and the optional services read ({@code sim}, {@code devices},
     * {@code linux}, {@code audit}, {@code metrics}) are shown as given.
     */
    public JsonObject effective(int uid, long nofile) throws StartupException {
        org.vfioexport.api.Policy p;
        try {
            p = org.vfioexport.api.Policy.fromConfig(policy(), uid, nofile);
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
        org.vfioexport.api.Policy.Limits l = p.limits();
        JsonObject policy = new JsonObject().put("allow_uids", new JsonArray(p.allowUids().stream().sorted().toList()))
                .put("allow_gids", new JsonArray(p.allowGids().stream().sorted().toList()))
                .put("allow_daemon_user", p.allowDaemonUser()).put("max_exports_per_client", p.maxExportsPerClient())
                .put("subscriber_queue", p.subscriberQueue()).put("max_connections_per_uid", l.maxConnectionsPerUid())
                .put("max_exports_per_uid", l.maxExportsPerUid()).put("max_subscriptions_per_uid", l.maxSubscriptionsPerUid())
                .put("max_fds_in_flight_per_uid", l.maxFdsInFlightPerUid())
                .put("max_requests_in_flight_per_client", l.maxRequestsInFlightPerClient())
                .put("max_output_bytes_per_client", l.maxOutputBytesPerClient()).put("max_batch", l.maxBatch())
                .put("max_importers_per_uid", l.maxImportersPerUid());
        JsonObject out = new JsonObject().put("backend", backend()).put("socket", socket().toString())
                .put("socket_mode", json.getString("socket_mode", "0660")).put("socket_group", json.getString("socket_group"))
                .put("pidfile", json.getString("pidfile")).put("max_line_bytes", maxLineBytes())
                .put("event_retention", eventRetention()).put("discipline", json.getString("discipline", "message-order"))
                .put("policy", policy).put("handshake", handshakeOrFail().toJson());
        for (String k : new String[] {"sim", "devices", "linux", "audit", "metrics"}) {
            if (json.containsKey(k)) out.put(k, json.getValue(k));
        }
        try {
            out.put("cluster", cluster().effective());
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
        return out;
    }

    public JsonObject json() {
        return json;
    }

    public String backend() {
        return json.getString("backend", "sim");
    }

    /**
     * The socket, absolute: the {@code socket} key (relative to the working directory), else the default of the
     * rule daemon and clients share ({@link SocketPath}: /run/vfio-export/vfio-export.sock for root). The command
     * line puts {@code --socket}, else $VFIO_EXPORT_SOCKET, in the key before this is read. Throws
     * {@link SocketPath.NoDefaultException} when there is no key and no default ({@link #validate} says so first).
     */
    public Path socket() {
        String s = json.getString("socket");
        if (s != null) return Path.of(s).toAbsolutePath();
        return SocketPath.defaultFor(Daemon.daemonUid(), System.getenv());
    }

    /** How devices serialise their operations: {@code message-order} (default) or {@code lock} (for comparison). */
    public org.vfioexport.device.Discipline discipline() throws StartupException {
        try {
            return org.vfioexport.device.Discipline.parse(json.getString("discipline", "message-order"));
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
    }

    /**
     * The socket's mode, from {@code socket_mode}: octal permission digits such as {@code "0660"} (the default) or
     * {@code "0666"}; only read and write bits mean anything on a socket.
     */
    public Set<PosixFilePermission> socketMode() throws StartupException {
        String m = json.getString("socket_mode", "0660");
        if (!m.matches("0?[0-7]{3}")) throw new StartupException("socket_mode must be octal digits such as \"0660\", got \"" + m + "\"");
        int bits = Integer.parseInt(m, 8);
        if ((bits & 0111) != 0) throw new StartupException("socket_mode " + m + " has execute bits: a socket needs only read and write");
        Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] order = {PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
                PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE,
                PosixFilePermission.GROUP_READ, PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_READ};
        for (int i = 0; i < order.length; i++) if ((bits & (1 << i)) != 0) out.add(order[i]);
        return out;
    }

    /** The socket's group, from {@code socket_group} (a name or a numeric gid), or null for the daemon's own. */
    public GroupPrincipal socketGroup() throws StartupException {
        String g = json.getString("socket_group");
        if (g == null) return null;
        try {
            return FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByGroupName(g);
        } catch (IOException e) {
            throw new StartupException("socket_group: no group \"" + g + "\" on this host", e);
        }
    }

    /** {@code pidfile}: where to write the daemon's pid once it listens, or null. */
    public Path pidfile() {
        String p = json.getString("pidfile");
        return p == null ? null : Path.of(p);
    }

    public int maxLineBytes() {
        return json.getInteger("max_line_bytes", 65536);
    }

    /** Events kept per device for {@code since} replay (at least 10,000 unless a test asks for fewer). */
    public int eventRetention() {
        return json.getInteger("event_retention", org.vfioexport.events.EventHub.DEFAULT_RETENTION);
    }

    /** {@code metrics.port}: the Prometheus port (0: any free one), or -1 when there is none (the default). */
    public int metricsPort() throws StartupException {
        JsonObject m = json.getJsonObject("metrics");
        if (m == null) return -1;
        Integer port = m.getInteger("port");
        if (port == null || port < 0 || port > 65535) {
            throw new StartupException("metrics.port must be a port number 0..65535 (0: any free port), got " + port);
        }
        return port;
    }

    /**
     * {@code metrics.host}: where the metrics port listens, {@code 127.0.0.1} by default. Only a loopback address
     * is accepted: the port has no authentication, and its text names devices and counts clients.
     */
    public String metricsHost() throws StartupException {
        JsonObject m = json.getJsonObject("metrics");
        String host = m == null ? "127.0.0.1" : m.getString("host", "127.0.0.1");
        if (!host.equals("127.0.0.1") && !host.equals("::1") && !host.equals("localhost")) {
            throw new StartupException("metrics.host must be a loopback address (127.0.0.1, ::1 or localhost), got \""
                    + host + "\": the metrics port has no authentication");
        }
        return host;
    }

    /** The {@code handshake} section with its defaults; a bad value throws IllegalArgumentException. */
    public org.vfioexport.api.HandshakeSettings handshake() {
        return org.vfioexport.api.HandshakeSettings.fromConfig(json.getJsonObject("handshake"));
    }

    private org.vfioexport.api.HandshakeSettings handshakeOrFail() throws StartupException {
        try {
            return handshake();
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
    }

    public JsonObject policy() {
        return json.getJsonObject("policy", new JsonObject());
    }

    /** The {@code audit} section with its defaults (docs/audit.md); a bad value throws IllegalArgumentException. */
    public org.vfioexport.audit.AuditSettings audit() {
        return org.vfioexport.audit.AuditSettings.fromConfig(json.getJsonObject("audit"), socket());
    }

    /** The {@code cluster} section (off when absent); a bad value throws IllegalArgumentException. */
    public org.vfioexport.cluster.ClusterSettings cluster() {
        return org.vfioexport.cluster.ClusterSettings.fromConfig(json.getJsonObject("cluster"));
    }

    /** Device display names from the {@code devices} section. */
    public Map<String, String> deviceNames() {
        Map<String, String> names = new LinkedHashMap<>();
        JsonArray devices = json.getJsonArray("devices", new JsonArray());
        for (int i = 0; i < devices.size(); i++) {
            JsonObject d = devices.getJsonObject(i);
            if (d.getString("id") != null && d.getString("name") != null) names.put(d.getString("id"), d.getString("name"));
        }
        return names;
    }

    /** The whole file as plain maps and lists, the shape the backends' {@code fromConfig} take. */
    @SuppressWarnings("unchecked")
    public Map<String, Object> asMap() {
        try {
            return new ObjectMapper().readValue(json.encode(), Map.class);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public Config with(String key, Object value) {
        JsonObject copy = json.copy();
        if (value != null) copy.put(key, value);
        return new Config(copy);
    }
}

package org.vfioexport.app;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;

import java.util.List;

/**
 * The shape of {@code conf/vfio-export.json}, as typed records: the file is bound to them once, at load, so that an
 * unknown key, a wrong type or a missing required value is an error naming its JSON path ({@code policy.polcy},
 * {@code devices[1].regions[0].size}) before anything is created on disk. Absent keys are null here and take their
 * documented defaults where they are used (docs/configuration.md lists every key).
 */
public final class ConfigSchema {
    private ConfigSchema() {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record File(String backend, String socket, @JsonProperty("socket_group") String socketGroup,
                       @JsonProperty("socket_mode") String socketMode, String pidfile,
                       @JsonProperty("max_line_bytes") Integer maxLineBytes,
                       @JsonProperty("event_retention") Integer eventRetention, String discipline,
                       Policy policy, Sim sim, List<Device> devices, Linux linux, Audit audit,
                       Metrics metrics, Cluster cluster, Handshake handshake) {}

    /** Cluster mode (off unless {@code enabled}); docs/configuration.md describes each key. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Cluster(Boolean enabled, String node, String name, String host, Integer port,
                          @JsonProperty("bus_port") Integer busPort, List<String> members,
                          @JsonProperty("join_timeout_ms") Integer joinTimeoutMs,
                          @JsonProperty("failure_timeout_ms") Integer failureTimeoutMs,
                          @JsonProperty("request_timeout_ms") Integer requestTimeoutMs,
                          @JsonProperty("allow_uids") List<Integer> allowUids,
                          @JsonProperty("allow_gids") List<Integer> allowGids,
                          @JsonProperty("allow_daemon_user") Boolean allowDaemonUser) {}

    /**
     * The revocation handshake (docs/protocol.md, "Revocation handshake"): the deadline a reset or memory-off
     * gives watchers (default 5000 ms; per device in {@code device_deadline_ms}), the maximum a call's
     * {@code quiesce_ms} may ask (default 60000, at most 600000), and the watches one connection may hold.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Handshake(@JsonProperty("deadline_ms") Long deadlineMs,
                            @JsonProperty("max_deadline_ms") Long maxDeadlineMs,
                            @JsonProperty("device_deadline_ms") java.util.Map<String, Long> deviceDeadlineMs,
                            @JsonProperty("max_watches_per_client") Integer maxWatchesPerClient) {}

    /** docs/audit.md describes each key. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Audit(Boolean enabled, String path, @JsonProperty("max_bytes") Long maxBytes, Integer keep,
                        @JsonProperty("fsync_ms") Long fsyncMs) {}

    /** The opt-in Prometheus port: absent, no port; {@code port} 0 takes any free one. Loopback only. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Metrics(@JsonProperty(required = true) Integer port, String host) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Policy(@JsonProperty("allow_uids") List<Integer> allowUids,
                         @JsonProperty("allow_gids") List<Integer> allowGids,
                         @JsonProperty("allow_daemon_user") Boolean allowDaemonUser,
                         @JsonProperty("max_exports_per_client") Integer maxExportsPerClient,
                         @JsonProperty("subscriber_queue") Integer subscriberQueue,
                         @JsonProperty("max_connections_per_uid") Integer maxConnectionsPerUid,
                         @JsonProperty("max_exports_per_uid") Integer maxExportsPerUid,
                         @JsonProperty("max_subscriptions_per_uid") Integer maxSubscriptionsPerUid,
                         @JsonProperty("max_fds_in_flight_per_uid") Integer maxFdsInFlightPerUid,
                         @JsonProperty("max_requests_in_flight_per_client") Integer maxRequestsInFlightPerClient,
                         @JsonProperty("max_output_bytes_per_client") Integer maxOutputBytesPerClient,
                         @JsonProperty("max_batch") Integer maxBatch,
                         @JsonProperty("max_importers_per_uid") Integer maxImportersPerUid) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Sim(String semantics, @JsonProperty("memory_enabled_at_open") Boolean memoryEnabledAtOpen) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Device(@JsonProperty(required = true) String id, String name, Boolean reset,
                         @JsonProperty("reset_ms") Long resetMs, Boolean dmabuf,
                         @JsonProperty("variant_driver") Boolean variantDriver, List<Region> regions) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Region(@JsonProperty(required = true) Integer index, @JsonProperty(required = true) String kind,
                         @JsonProperty(required = true) Long size, Boolean prefetchable, Long address) {}

    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Linux(List<String> devices) {}

    /** Strict: no unknown key, no coercion between types (a string is not a number, 4096.5 is not an integer). */
    private static final ObjectMapper MAPPER = strictMapper();

    private static ObjectMapper strictMapper() {
        JsonMapper m = JsonMapper.builder()
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
                .enable(SerializationFeature.INDENT_OUTPUT)
                .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .build();
        for (LogicalType t : new LogicalType[] {LogicalType.Integer, LogicalType.Float, LogicalType.Boolean,
                LogicalType.Textual}) {
            m.coercionConfigFor(t).setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail)
                    .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail);
        }
        return m;
    }

    /** Binds {@code json} (the file's text); the error names the JSON path of the first problem. */
    public static File bind(String json) throws InvalidConfigException {
        try {
            return MAPPER.readValue(json, File.class);
        } catch (JsonMappingException e) {
            throw new InvalidConfigException(path(e), describe(e));
        } catch (JsonProcessingException e) {
            String m = e.getOriginalMessage();
            int cut = m.indexOf(" (start marker");
            throw new InvalidConfigException("", "not valid JSON: " + (cut < 0 ? m : m.substring(0, cut))
                    + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr() + ", column "
                    + e.getLocation().getColumnNr()));
        }
    }

    /** The effective configuration as JSON (what {@code --check-config} prints). */
    public static String print(Object effective) {
        try {
            return MAPPER.writeValueAsString(effective);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code policy.max_batch}, {@code devices[1].regions[0].size}: the place of the problem in the file. */
    static String path(JsonMappingException e) {
        StringBuilder sb = new StringBuilder();
        for (JsonMappingException.Reference r : e.getPath()) {
            if (r.getFieldName() != null) {
                if (!sb.isEmpty()) sb.append('.');
                sb.append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                sb.append('[').append(r.getIndex()).append(']');
            }
        }
        return sb.toString();
    }

    private static String describe(JsonMappingException e) {
        if (e instanceof UnrecognizedPropertyException u) {
            return "unknown key \"" + u.getPropertyName() + "\"; known here: " + u.getKnownPropertyIds();
        }
        String m = e.getOriginalMessage();
        // Jackson's own words name Java types: say what the file should hold instead
        if (m.contains("Cannot coerce") || m.contains("Cannot deserialize value of type")) {
            String wanted = m.contains("java.lang.Integer") || m.contains("java.lang.Long") || m.contains("`int`")
                    || m.contains("`long`") ? "a whole number" : m.contains("java.lang.Boolean") || m.contains("`boolean`")
                    ? "true or false" : m.contains("java.lang.String") ? "a string" : m.contains("java.util.List")
                    ? "an array" : m.contains("ConfigSchema$") ? "an object" : "another type";
            return "must be " + wanted;
        }
        if (m.contains("Missing required creator property")) return "is required";
        int cut = m.indexOf('\n');
        return cut < 0 ? m : m.substring(0, cut);
    }

    /** The configuration file is wrong at {@code path}. */
    public static final class InvalidConfigException extends Exception {
        private final String path;

        InvalidConfigException(String path, String problem) {
            super(path.isEmpty() ? problem : path + ": " + problem);
            this.path = path;
        }

        public String path() {
            return path;
        }
    }
}

package org.vfioexport.metrics;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.app.Config;
import org.vfioexport.app.ConfigSchema;
import org.vfioexport.app.StartupException;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.DaemonProcess;
import org.vfioexport.testutil.TestDaemon;
import org.vfioexport.testutil.Wait;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Prometheus text of a real in-process daemon, scraped over its loopback HTTP port and through
 * {@code server.metrics}, before and after an export, a reset, a memory toggle and a refused request.
 */
class MetricsTest {
    private static final String NVME = "0000:01:00.0";

    @TempDir
    Path dir;

    @Test
    void aScrapeBeforeAndAfterAResetShowsTheValuesMove() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.put("metrics", new JsonObject().put("port", 0)));
             VfioExportClient c = d.connect()) {
            String url = d.daemon().metricsUrl();
            assertTrue(url.startsWith("http://127.0.0.1:") && url.endsWith("/metrics"), url);

            Scrape before = Scrape.parse(c.request("server.metrics").getString("text"));
            assertEquals(0, before.value("vfio_export_live_exports", "device", NVME));
            assertEquals(0, before.value("vfio_export_export_creations_total", "device", NVME));
            assertEquals(0, before.value("vfio_export_reset_seconds_count", "device", NVME));
            assertEquals(1, before.value("vfio_export_connections"));

            ExportedBuffer b = c.export(NVME, 2, 0, 4096);
            try {
                JsonObject reset = c.request("device.reset", new JsonObject().put("device", NVME));
                assertEquals(1, reset.getInteger("revoked"));
                RpcError refused = assertThrows(RpcError.class,
                        () -> c.request("device.get", new JsonObject().put("device", "0000:99:00.0")));
                assertEquals(-32001, refused.code());
                c.sendLine("{not json");
                assertEquals(-32700, c.read(20_000).object().getJsonObject("error").getInteger("code"));
                c.sendLine("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"server.info\",\"extra\":1}");
                assertEquals(-32600, c.read(20_000).object().getJsonObject("error").getInteger("code"));
                c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", false));
                c.request("device.set_memory", new JsonObject().put("device", NVME).put("enabled", true));

                try (VfioExportClient second = d.connect()) {
                    second.request("server.info"); // connected and served: counted
                    Scrape after = Scrape.parse(http(url));
                    assertEquals(1, after.value("vfio_export_live_exports", "device", NVME), "the export is alive");
                    assertEquals(1, after.value("vfio_export_export_creations_total", "device", NVME));
                    assertEquals(2, after.value("vfio_export_export_revocations_total", "device", NVME),
                            "revoked by the reset and by the memory disable");
                    assertEquals(1, after.value("vfio_export_export_revocations_total", "device", NVME, "cause", "reset"));
                    assertEquals(1, after.value("vfio_export_export_restorations_total", "device", NVME, "cause", "reset"));
                    assertEquals(1, after.value("vfio_export_export_restorations_total", "device", NVME,
                            "cause", "memory-enable"));
                    assertEquals(1, after.value("vfio_export_reset_seconds_count", "device", NVME));
                    assertEquals(1, after.value("vfio_export_memory_toggle_seconds_count", "device", NVME,
                            "enabled", "false"));
                    assertEquals(1, after.value("vfio_export_request_seconds_count", "method", "export.create"));
                    assertTrue(after.value("vfio_export_request_seconds_bucket", "method", "export.create",
                            "le", "+Inf") == 1, "the latency histogram has its sample");
                    assertEquals(1, after.value("vfio_export_request_errors_total", "method", "device.get",
                            "code", "-32001"));
                    assertEquals(0, after.value("vfio_export_request_errors_total", "method", "export.create"));
                    assertEquals(1, after.value("vfio_export_request_errors_total", "method", "none", "code", "-32700"));
                    assertEquals(1, after.value("vfio_export_request_errors_total", "method", "none", "code", "-32600"));
                    assertEquals(2, after.value("vfio_export_connections"));
                    assertEquals(0, after.value("vfio_export_events_lost_total"));
                    assertEquals(0, after.value("vfio_export_subscriber_queued_events"));
                }
            } finally {
                c.request("export.release", new JsonObject().put("export_id", b.id()));
                b.fd().close();
            }
            Scrape released = Scrape.parse(c.request("server.metrics").getString("text"));
            assertEquals(0, released.value("vfio_export_live_exports", "device", NVME));
            assertEquals(1, released.value("vfio_export_export_releases_total", "device", NVME, "cause", "client"));
        }
    }

    @Test
    void eventsLostForASlowSubscriberAreCountedAndOutliveItsSubscription() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.getJsonObject("policy").put("subscriber_queue", 4));
             VfioExportClient c = d.connect()) {
            double lost;
            try (VfioExportClient sub = d.connect()) {
                sub.request("events.subscribe", new JsonObject().put("devices", new JsonArray().add(NVME)));
                // the subscriber reads nothing while thousands of events are produced: its socket fills, its
                // delivery pauses, then its queue overflows
                List<ExportedBuffer> held = new ArrayList<>();
                for (int i = 0; i < 8; i++) held.add(c.export(NVME, 2, 4096L * i, 4096));
                List<Object> ids = new ArrayList<>();
                for (int i = 0; i < 600; i++) {
                    ids.add(c.send("device.set_memory", new JsonObject().put("device", NVME).put("enabled", i % 2 == 1)));
                }
                for (Object id : ids) assertTrue(c.await(id).object().containsKey("result"));
                for (ExportedBuffer b : held) b.fd().close();
                Scrape s = Scrape.parse(c.request("server.metrics").getString("text"));
                lost = s.value("vfio_export_events_lost_total");
                assertTrue(lost > 0, "a subscriber that does not read loses events: " + lost);
                assertEquals(1, s.value("vfio_export_subscribers"));
                assertTrue(s.value("vfio_export_subscriber_queue_max") <= 4 + 1,
                        "a queue holds at most subscriber_queue events and one events.lost per device");
                assertEquals(600, s.value("vfio_export_memory_toggle_seconds_count", "device", NVME));
            }
            Wait.until("the subscriber's connection is gone", 20_000, () -> d.daemon().service().sessions().size() == 1);
            Scrape after = Scrape.parse(c.request("server.metrics").getString("text"));
            assertEquals(0, after.value("vfio_export_subscribers"));
            assertEquals(0, after.value("vfio_export_subscriber_queued_events"));
            assertEquals(lost, after.value("vfio_export_events_lost_total"), "a counter never goes down");
        }
    }

    @Test
    void theHttpPortServesOnlyGetMetrics() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir, c -> c.put("metrics", new JsonObject().put("port", 0)))) {
            String url = d.daemon().metricsUrl();
            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> other = http.send(HttpRequest.newBuilder(URI.create(url.replace("/metrics", "/x")))
                    .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(404, other.statusCode());
            HttpResponse<String> post = http.send(HttpRequest.newBuilder(URI.create(url))
                    .POST(HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(20)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(405, post.statusCode());
            HttpResponse<String> get = http.send(HttpRequest.newBuilder(URI.create(url))
                    .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, get.statusCode());
            assertTrue(get.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
        }
    }

    @Test
    void theDaemonPrintsThePortItChoseAndServesIt() throws Exception {
        try (DaemonProcess d = DaemonProcess.start(dir, c -> c.put("metrics", new JsonObject().put("port", 0)))) {
            String line = d.awaitLineStartingWith("vfio-exportd: metrics on http://127.0.0.1:", 60_000);
            String url = line.substring("vfio-exportd: metrics on ".length());
            assertTrue(url.endsWith("/metrics"), line);
            assertTrue(http(url).contains("vfio_export_connections"), "the process serves its metrics");
        }
    }

    @Test
    void withoutTheKeyThereIsNoPort() throws Exception {
        try (TestDaemon d = TestDaemon.start(dir)) {
            assertNull(d.daemon().metricsUrl());
            try (VfioExportClient c = d.connect()) {
                assertEquals(1, Scrape.parse(c.request("server.metrics").getString("text")).value("vfio_export_connections"));
            }
        }
    }

    @Test
    void onlyLoopbackIsAccepted() throws Exception {
        StartupException e = assertThrows(StartupException.class, () -> new Config(new JsonObject()
                .put("metrics", new JsonObject().put("port", 9100).put("host", "0.0.0.0"))).validate());
        assertTrue(e.getMessage().contains("metrics.host must be a loopback address"), e.getMessage());
        assertThrows(StartupException.class, () -> new Config(new JsonObject()
                .put("metrics", new JsonObject().put("port", 70000))).validate());
        ConfigSchema.InvalidConfigException unknown = assertThrows(ConfigSchema.InvalidConfigException.class,
                () -> ConfigSchema.bind("{\"metrics\":{\"port\":0,\"prot\":1}}"));
        assertTrue(unknown.getMessage().startsWith("metrics.prot: unknown key"), unknown.getMessage());
        ConfigSchema.bind("{\"metrics\":{\"port\":9100,\"host\":\"::1\"}}");
    }

    private static String http(String url) throws IOException, InterruptedException {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return r.body();
    }

    /** The samples of a Prometheus text exposition: name, labels, value. */
    private record Scrape(String text, Map<String, Map<Map<String, String>, Double>> samples) {
        static Scrape parse(String text) {
            Map<String, Map<Map<String, String>, Double>> out = new HashMap<>();
            for (String line : text.split("\n")) {
                if (line.isBlank() || line.startsWith("#")) continue;
                int brace = line.indexOf('{');
                int space = line.lastIndexOf(' ');
                String name = brace < 0 ? line.substring(0, space) : line.substring(0, brace);
                Map<String, String> labels = new HashMap<>();
                if (brace >= 0) {
                    String body = line.substring(brace + 1, line.lastIndexOf('}'));
                    for (String kv : body.split(",(?=[a-z_]+=\")")) {
                        if (kv.isEmpty()) continue;
                        int eq = kv.indexOf('=');
                        labels.put(kv.substring(0, eq), kv.substring(eq + 2, kv.length() - 1));
                    }
                }
                out.computeIfAbsent(name, k -> new HashMap<>()).put(labels, Double.parseDouble(line.substring(space + 1)));
            }
            return new Scrape(text, out);
        }

        /** The sum of the samples of {@code name} whose labels include {@code labels}; 0 when there is none. */
        double value(String name, String... labels) {
            double sum = 0;
            for (Map.Entry<Map<String, String>, Double> s : samples.getOrDefault(name, Map.of()).entrySet()) {
                boolean match = true;
                for (int i = 0; i < labels.length; i += 2) {
                    match &= labels[i + 1].equals(s.getKey().get(labels[i]));
                }
                if (match) sum += s.getValue();
            }
            return sum;
        }
    }
}

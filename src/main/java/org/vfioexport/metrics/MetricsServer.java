package org.vfioexport.metrics;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;

/**
 * The opt-in metrics port: {@code GET /metrics} answers the Prometheus text of {@link DaemonMetrics}; any other
 * path is 404, any other method 405. It serves loopback only (the configuration refuses another host): the text
 * names devices and counts clients, and there is no authentication on it.
 */
public final class MetricsServer {
    /** Prometheus text exposition format 0.0.4. */
    static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private final HttpServer server;
    private final String host;

    private MetricsServer(HttpServer server, String host) {
        this.server = server;
        this.host = host;
    }

    /** Listens on {@code host}:{@code port} (0: any free port, see {@link #port()}). */
    public static Future<MetricsServer> listen(Vertx vertx, DaemonMetrics metrics, String host, int port) {
        HttpServer s = vertx.createHttpServer(new HttpServerOptions().setHost(host).setPort(port));
        s.requestHandler(req -> {
            if (!req.path().equals("/metrics")) {
                req.response().setStatusCode(404).end("only /metrics is served here\n");
            } else if (req.method() != HttpMethod.GET && req.method() != HttpMethod.HEAD) {
                req.response().setStatusCode(405).putHeader("Allow", "GET, HEAD").end();
            } else {
                req.response().putHeader("Content-Type", CONTENT_TYPE).end(metrics.scrape());
            }
        });
        return s.listen().map(bound -> new MetricsServer(bound, host));
    }

    /** The port actually bound. */
    public int port() {
        return server.actualPort();
    }

    /** Where to scrape, as the log line and the start-up output say it. */
    public String url() {
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port() + "/metrics";
    }

    public Future<Void> close() {
        return server.close();
    }
}

package org.vfioexport.client.vertx;

import org.vfioexport.ffm.posix.UnixSocket;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The client library ({@link org.vfioexport.client.VfioExportClient}) with Vert.x's JSON types at its surface, for
 * the daemon's command line and tests, which build and read JSON with Vert.x. Every call goes straight to the
 * library; JSON is wrapped on the way in and unwrapped on the way out, nothing else.
 */
public final class VfioExportClient implements AutoCloseable {
    public static final long DEFAULT_TIMEOUT_MS = org.vfioexport.client.VfioExportClient.DEFAULT_TIMEOUT_MS;

    private final org.vfioexport.client.VfioExportClient c;

    private VfioExportClient(org.vfioexport.client.VfioExportClient c) {
        this.c = c;
    }

    public static VfioExportClient connect(Path socket) throws IOException {
        return new VfioExportClient(org.vfioexport.client.VfioExportClient.connect(socket));
    }

    public static VfioExportClient connectWithoutFds(Path socket) throws IOException {
        return new VfioExportClient(org.vfioexport.client.VfioExportClient.connectWithoutFds(socket));
    }

    public static VfioExportClient connect(Path socket, boolean fds, long timeoutMs) throws IOException {
        return new VfioExportClient(org.vfioexport.client.VfioExportClient.connect(socket, fds, timeoutMs));
    }

    /** The library's client underneath. */
    public org.vfioexport.client.VfioExportClient plain() {
        return c;
    }

    public JsonObject hello() {
        return JsonText.object(c.hello());
    }

    /** The socket (for tests that inspect it); null without fd passing. */
    public UnixSocket socket() {
        return c.socket();
    }

    public boolean passesFds() {
        return c.passesFds();
    }

    public VfioExportClient timeout(long ms) {
        c.timeout(ms);
        return this;
    }

    public Object send(String method, JsonObject params) throws IOException {
        return c.send(method, JsonText.plainObject(params));
    }

    public void notify(String method, JsonObject params) throws IOException {
        c.notify(method, JsonText.plainObject(params));
    }

    public Message await(Object id) throws IOException {
        return Message.of(c.await(id));
    }

    public Message call(String method, JsonObject params) throws IOException {
        return Message.of(c.call(method, JsonText.plainObject(params)));
    }

    public JsonObject request(String method, JsonObject params) throws IOException, RpcError {
        try {
            return JsonText.object(c.request(method, JsonText.plainObject(params)));
        } catch (org.vfioexport.client.RpcError e) {
            throw RpcError.of(e);
        }
    }

    public JsonObject request(String method) throws IOException, RpcError {
        return request(method, null);
    }

    public ExportedBuffer export(String device, long region, long offset, long length) throws IOException, RpcError {
        return export(new JsonObject().put("device", device).put("region", region)
                .put("offset", offset).put("length", length));
    }

    public ExportedBuffer export(JsonObject params) throws IOException, RpcError {
        try {
            org.vfioexport.client.ExportedBuffer b = c.export(JsonText.plainObject(params));
            return new ExportedBuffer(JsonText.object(b.export()), b.fd());
        } catch (org.vfioexport.client.RpcError e) {
            throw RpcError.of(e);
        }
    }

    public Message batch(JsonArray requests) throws IOException {
        return Message.of(c.batch((List<?>) JsonText.plain(requests)));
    }

    public JsonObject nextEvent(long timeoutMs) throws IOException {
        return JsonText.object(c.nextEvent(timeoutMs));
    }

    public JsonObject nextNotification(String method, long timeoutMs) throws IOException {
        return JsonText.object(c.nextNotification(method, timeoutMs));
    }

    public boolean hasEvent(long timeoutMs) throws IOException {
        return c.hasEvent(timeoutMs);
    }

    public void sendLine(String line) throws IOException {
        c.sendLine(line);
    }

    public void sendRaw(byte[] bytes) throws IOException {
        c.sendRaw(bytes);
    }

    public Message read(long timeoutMs) throws IOException {
        return Message.of(c.read(timeoutMs));
    }

    public boolean awaitClosed(long timeoutMs) throws IOException {
        return c.awaitClosed(timeoutMs);
    }

    public int unclaimedFds() {
        return c.unclaimedFds();
    }

    @Override
    public void close() {
        c.close();
    }
}

package org.vfioexport.client.vertx;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.vfioexport.ffm.posix.Fd;

/** {@link org.vfioexport.client.Message} with its JSON as Vert.x's types (see {@link VfioExportClient}). */
public record Message(Object json, Fd[] fds) {
    static Message of(org.vfioexport.client.Message m) {
        return new Message(JsonText.wrap(m.json()), m.fds());
    }

    public boolean isObject() {
        return json instanceof JsonObject;
    }

    public JsonObject object() {
        return (JsonObject) json;
    }

    public JsonArray array() {
        return (JsonArray) json;
    }

    /** A notification (no id): {@code hello} or {@code event}. */
    public boolean isNotification() {
        return json instanceof JsonObject o && o.containsKey("method") && !o.containsKey("id");
    }

    public String method() {
        return isNotification() ? object().getString("method") : null;
    }
}

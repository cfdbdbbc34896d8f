package org.vfioexport.client;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * One line from the server, decoded, with the fds that belong to it (in {@code fd_index} order). The receiver
 * owns the fds: close them (or keep them) when done.
 */
public record Message(Object json, int[] fds) {
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

package org.vfioexport.client;


import java.util.List;
import java.util.Map;
import org.vfioexport.ffm.posix.Fd;

/**
 * One line from the server, decoded by {@link JsonText} (objects are maps, arrays lists), with the fds that belong
 * to it (in {@code fd_index} order). The receiver owns the fds: close them (or keep them) when done.
 */
public record Message(Object json, Fd[] fds) {
    public boolean isObject() {
        return json instanceof Map;
    }

    @SuppressWarnings("unchecked")
    public Map<String, Object> object() {
        return (Map<String, Object>) json;
    }

    @SuppressWarnings("unchecked")
    public List<Object> array() {
        return (List<Object>) json;
    }

    /** A notification (no id): {@code hello} or {@code event}. */
    public boolean isNotification() {
        return json instanceof Map<?, ?> o && o.containsKey("method") && !o.containsKey("id");
    }

    public String method() {
        return isNotification() ? (String) object().get("method") : null;
    }

    /** The {@code params} object of a notification, or null. */
    public Map<String, Object> params() {
        return isObject() ? Values.object(object().get("params")) : null;
    }
}

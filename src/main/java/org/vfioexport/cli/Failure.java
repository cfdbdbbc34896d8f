package org.vfioexport.cli;

import io.vertx.core.json.JsonObject;
import org.vfioexport.client.ConnectFailedException;
import org.vfioexport.client.vertx.JsonText;
import org.vfioexport.client.vertx.RpcError;
import org.vfioexport.client.vertx.VfioExportClient;

import java.io.EOFException;
import java.io.IOException;
import java.io.PrintWriter;

/** What a failed command prints (one line on stderr, JSON with {@code --json}) and the exit status it gets. */
final class Failure {
    private Failure() {}

    /** The message a lost connection gets, whatever the command was doing. */
    static final String DAEMON_GONE = "the daemon closed the connection (it stopped or was killed)";

    static int report(Exception e, PrintWriter err, boolean json) {
        int status;
        String message;
        JsonObject error = new JsonObject();
        switch (e) {
            case RpcError r -> {
                status = Exit.RPC_ERROR;
                message = r.getMessage() + " (error " + r.code() + errno(r.data()) + ")";
                error.put("code", r.code()).put("message", r.getMessage());
                if (r.data() != null) error.put("data", r.data());
            }
            case ConnectFailedException c -> {
                status = Exit.NO_DAEMON;
                message = c.getMessage();
            }
            case EOFException eof -> {
                status = Exit.NO_DAEMON;
                message = DAEMON_GONE;
            }
            case org.vfioexport.client.TimeoutIOException t -> {
                status = Exit.NO_DAEMON;
                message = "no answer from the daemon in time (" + t.getMessage() + "; -t sets the timeout)";
            }
            case IOException io -> {
                status = Exit.NO_DAEMON;
                message = io.getMessage();
            }
            case IllegalArgumentException ia -> {
                status = Exit.USAGE;
                message = ia.getMessage();
            }
            default -> {
                status = Exit.RPC_ERROR;
                message = e.toString();
            }
        }
        if (json) {
            if (!error.containsKey("message")) error.put("message", message);
            err.println(JsonText.encode(new JsonObject().put("error", error)));
        } else {
            err.println("vfio-export: error: " + message);
        }
        err.flush();
        return status;
    }

    /** {@code , EINVAL (errno 22)} for an error whose data carries the kernel's errno, else nothing. */
    static String errno(JsonObject data) {
        if (data == null || !(data.getValue("errno") instanceof Number n)) return "";
        String name = data.getValue("name") instanceof String s ? s : org.vfioexport.ffm.posix.Errno.nameOf(n.intValue());
        return ", " + name + " (errno " + n.intValue() + ")";
    }
}

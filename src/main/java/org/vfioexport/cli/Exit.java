package org.vfioexport.cli;

/**
 * The CLI's exit statuses (also listed in every command's help and man page, and in docs/protocol.md). Scripts
 * can tell "the daemon said no" (1) from "I typed it wrong" (2) from "there is no daemon" (3).
 */
final class Exit {
    private Exit() {}

    static final int OK = 0;
    /** The daemon answered with a JSON-RPC error. */
    static final int RPC_ERROR = 1;
    /** An unknown command or option, a missing or malformed argument (picocli's own usage status). */
    static final int USAGE = 2;
    /** Cannot connect, no answer within the timeout, or the connection was lost (the daemon stopped or died). */
    static final int NO_DAEMON = 3;
    /** {@code export}: the daemon released the export (shutdown, device close) while the command held it. */
    static final int EXPORT_LOST = 4;

    /** As every command's help and man page show them. */
    static final java.util.Map<String, String> LIST = exitCodeList();

    private static java.util.Map<String, String> exitCodeList() {
        java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
        m.put(" " + OK, "success");
        m.put(" " + RPC_ERROR, "the daemon answered with an error (its JSON-RPC code and message are printed)");
        m.put(" " + USAGE, "usage: an unknown command or option, a missing or malformed argument");
        m.put(" " + NO_DAEMON, "no daemon: cannot connect, no answer within the timeout, or the connection was lost");
        m.put(" " + EXPORT_LOST, "export only: the export was released by the daemon (shutdown, device close)");
        return m;
    }
}

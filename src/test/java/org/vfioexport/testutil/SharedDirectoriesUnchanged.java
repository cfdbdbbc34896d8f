package org.vfioexport.testutil;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Fails a test class that changed the mode or owner of a directory it shares with the rest of the machine: the
 * JVM's temp directory ({@code /tmp}) and every directory above it. Tests may change what lies inside their own
 * {@code @TempDir}, never these: a {@code /tmp} left at 0755 breaks apt and every other user of the machine.
 */
public final class SharedDirectoriesUnchanged implements BeforeAllCallback, AfterAllCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(SharedDirectoriesUnchanged.class);

    @Override
    public void beforeAll(ExtensionContext context) {
        context.getStore(NS).put("before", snapshot());
    }

    @Override
    public void afterAll(ExtensionContext context) {
        @SuppressWarnings("unchecked")
        Map<Path, String> before = context.getStore(NS).get("before", Map.class);
        Map<Path, String> after = snapshot();
        if (!after.equals(before)) {
            throw new AssertionError(context.getDisplayName() + " changed directories outside its own temp dirs: before "
                    + before + ", after " + after);
        }
    }

    /** Mode (with the sticky and set-id bits, octal) and owner of the temp directory and each of its ancestors. */
    static Map<Path, String> snapshot() {
        Map<Path, String> out = new LinkedHashMap<>();
        try {
            for (Path p = Path.of(System.getProperty("java.io.tmpdir")).toRealPath(); p != null; p = p.getParent()) {
                int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
                int uid = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
                out.put(p, Integer.toOctalString(mode & 07777) + " uid " + uid);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }
}

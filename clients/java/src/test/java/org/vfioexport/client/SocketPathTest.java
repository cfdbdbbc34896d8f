package org.vfioexport.client;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;
import java.util.function.IntSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one socket rule of the daemon and its clients, with the uid and the environment given (nothing is read). */
class SocketPathTest {
    private static final IntSupplier ROOT = () -> 0, USER = () -> 1000;
    private static final IntSupplier UNREAD = () -> {
        throw new AssertionError("the uid is read only when the default is needed");
    };

    @TempDir
    Path dir;

    @Test
    void rootGetsTheSystemRuntimeDirectory() {
        assertEquals(Path.of("/run/vfio-export/vfio-export.sock"), SocketPath.resolve(null, null, Map.of(), ROOT));
        // root's default does not move with XDG_RUNTIME_DIR (a root login session has one: /run/user/0)
        assertEquals(Path.of("/run/vfio-export/vfio-export.sock"),
                SocketPath.resolve(null, null, Map.of("XDG_RUNTIME_DIR", "/run/user/0"), ROOT));
    }

    @Test
    void anotherUserGetsItsOwnRuntimeDirectory() {
        assertEquals(dir.resolve("vfio-export/vfio-export.sock"),
                SocketPath.resolve(null, null, Map.of("XDG_RUNTIME_DIR", dir.toString()), USER));
    }

    @Test
    void anotherUserWithoutARuntimeDirectoryIsToldToNameTheSocket() {
        for (Map<String, String> env : new Map[] {Map.of(), Map.of("XDG_RUNTIME_DIR", ""), Map.of("XDG_RUNTIME_DIR", "relative")}) {
            SocketPath.NoDefaultException e = assertThrows(SocketPath.NoDefaultException.class,
                    () -> SocketPath.resolve(null, null, env, USER));
            assertTrue(e.getMessage().contains("uid 1000") && e.getMessage().contains("XDG_RUNTIME_DIR")
                    && e.getMessage().contains("--socket") && e.getMessage().contains("VFIO_EXPORT_SOCKET"), e.getMessage());
        }
    }

    @Test
    void theVariableOverridesTheConfigurationAndTheDefault() {
        Path named = dir.resolve("named.sock");
        Map<String, String> env = Map.of("VFIO_EXPORT_SOCKET", named.toString(), "XDG_RUNTIME_DIR", dir.toString());
        assertEquals(named, SocketPath.resolve(null, null, env, UNREAD));
        assertEquals(named, SocketPath.resolve(null, dir.resolve("configured.sock"), env, UNREAD));
        // an empty variable is no setting
        assertEquals(Path.of("/run/vfio-export/vfio-export.sock"),
                SocketPath.resolve(null, null, Map.of("VFIO_EXPORT_SOCKET", ""), ROOT));
    }

    @Test
    void anExplicitPathOverridesEverything() {
        Path explicit = dir.resolve("explicit.sock");
        Map<String, String> env = Map.of("VFIO_EXPORT_SOCKET", dir.resolve("named.sock").toString());
        assertEquals(explicit, SocketPath.resolve(explicit, dir.resolve("configured.sock"), env, UNREAD));
    }

    @Test
    void theConfigurationComesBeforeTheDefault() {
        Path configured = dir.resolve("configured.sock");
        assertEquals(configured, SocketPath.resolve(null, configured, Map.of(), UNREAD));
    }

    @Test
    void relativePathsComeOutAbsolute() {
        Path cwd = Path.of("").toAbsolutePath();
        assertEquals(cwd.resolve("run/x.sock"), SocketPath.resolve(Path.of("run/x.sock"), null, Map.of(), UNREAD));
        assertEquals(cwd.resolve("y.sock"), SocketPath.resolve(null, null, Map.of("VFIO_EXPORT_SOCKET", "y.sock"), UNREAD));
        assertEquals(cwd.resolve("z.sock"), SocketPath.resolve(null, Path.of("z.sock"), Map.of(), UNREAD));
    }
}

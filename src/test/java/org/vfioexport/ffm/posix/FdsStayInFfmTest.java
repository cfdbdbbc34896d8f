package org.vfioexport.ffm.posix;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fd numbers and libc stay behind {@code ffm}: outside {@code ffm} and {@code kernel} (the SPI and its
 * implementations, which speak the kernel's numbers), the main sources of the daemon and of the client library hold
 * fds as {@link Fd} / {@link UnixSocket} objects and never call {@link Posix}. This scans them line by line for the
 * ways a bare fd has been written before:
 * <ul>
 *   <li>a call of, or import of, {@code Posix};</li>
 *   <li>{@code java.lang.foreign} (native memory and downcalls belong to {@code ffm});</li>
 *   <li>an {@code int} (or {@code int[]}, {@code Integer} element) named as an fd: {@code fd}, {@code fds},
 *       {@code sock}, {@code socket}, {@code ...Fd}, an array {@code ...Fds} (a count such as {@code fdsInFlight} or
 *       {@code unclaimedFds} is not);</li>
 *   <li>an fd's number taken out of its object: {@code fd.intValue()}, {@code ch.fd().intValue()}.</li>
 * </ul>
 * {@link #ALLOWED} names the one file that may do the last: where Netty's channels own the fds (api/EpollChannels).
 */
class FdsStayInFfmTest {
    private static final Pattern POSIX = Pattern.compile("\\bPosix\\s*\\.|import\\s+org\\.vfioexport\\.ffm\\.posix\\.Posix\\s*;");
    private static final Pattern FOREIGN = Pattern.compile("\\bjava\\.lang\\.foreign\\b");
    /** A name for one fd: {@code fd}, {@code sock}, {@code socket}, {@code listenFd}; {@code unclaimedFds} is a count. */
    private static final String FD_NAME = "(?:fd|fds|sock|socket|[a-z]\\w*Fd)";
    private static final Pattern INT_FD = Pattern.compile("\\b(?:int|Integer\\s*>)\\s+" + FD_NAME + "\\b"
            + "|\\bint\\s*\\[\\s*\\]\\s+(?:" + FD_NAME + "|[a-z]\\w*Fds)\\b");
    private static final Pattern NUMBER_OUT = Pattern.compile("\\b" + FD_NAME + "(?:\\(\\))?\\.intValue\\(\\)");

    /** File (relative to its source root) -> why it may take an fd's number out of its object. */
    static final Map<String, String> ALLOWED = Map.of(
            "org/vfioexport/api/EpollChannels.java",
            "the one place where fd numbers cross between Netty's channels (their owners) and ffm");

    @Test
    void noBareFdOrPosixCallOutsideFfmAndKernel() throws Exception {
        Path home = Path.of(System.getProperty("vfioexport.home", ".")).toAbsolutePath();
        List<String> found = new ArrayList<>();
        found.addAll(scan(home.resolve("src/main/java")));
        found.addAll(scan(home.resolve("clients/java/src/main/java")));
        assertTrue(found.isEmpty(), "bare fds or libc calls outside ffm and kernel (hold an Fd/UnixSocket instead):\n"
                + String.join("\n", found));
    }

    /** The scan finds a planted violation in a source tree laid out like the real one, and spares ffm and kernel. */
    @Test
    void theScanFailsOnAPlantedViolation(@TempDir Path root) throws IOException {
        write(root, "org/vfioexport/api/Planted.java", """
                package org.vfioexport.api;
                final class Planted {
                    void leak(org.vfioexport.ffm.posix.Fd f) throws Exception {
                        int fd = f.intValue();
                        org.vfioexport.ffm.posix.Posix.close(fd);
                    }
                }
                """);
        write(root, "org/vfioexport/ffm/posix/Inside.java", "class Inside { int fd; void f() { Posix.close(fd); } }\n");
        write(root, "org/vfioexport/kernel/linux/Inside.java", "class Inside { int fd; void f() { Posix.close(fd); } }\n");
        List<String> found = scan(root);
        assertEquals(2, found.size(), String.join("\n", found));
        assertTrue(found.stream().allMatch(f -> f.startsWith("org/vfioexport/api/Planted.java:")), String.join("\n", found));
    }

    /** Each form the scan looks for, as it was once written, and what it leaves alone. */
    @Test
    void theScanRecognisesTheFormsItLooksFor() {
        for (String bad : List.of("    private final int fd;", "    private final int sockFd;", "int[] fds = new int[n];",
                "    public int fd() {", "    public int dupFd() throws KernelException {", "static void closeQuietly(int fd) {",
                "ArrayDeque<Integer> fds = new ArrayDeque<>();", "Posix.close(fd);", "import org.vfioexport.ffm.posix.Posix;",
                "int n = ep.fd().intValue();", "String what = \"fd \" + socket.intValue();",
                "import java.lang.foreign.MemorySegment;", "private int listenFd = -1;", "int[] sentFds = new int[n];")) {
            assertNotNull(violation(bad), bad);
        }
        for (String fine : List.of("    private int fdsInFlight;", "    public int unclaimedFds() {", "static int fdShortage(Throwable cause) {",
                "int n = count.intValue();", "Fd fd = e.dupFd();", "// Posix.close(fd) in a comment",
                "import java.nio.file.attribute.PosixFilePermission;", "return n.intValue();")) {
            assertNull(violation(fine), fine);
        }
    }

    private static void write(Path root, String file, String text) throws IOException {
        Path f = root.resolve(file);
        Files.createDirectories(f.getParent());
        Files.writeString(f, text);
    }

    static List<String> scan(Path sources) throws IOException {
        List<String> found = new ArrayList<>();
        Path ffm = sources.resolve("org/vfioexport/ffm"), kernel = sources.resolve("org/vfioexport/kernel");
        try (Stream<Path> files = Files.walk(sources)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java") && !p.startsWith(ffm) && !p.startsWith(kernel))
                    .sorted().toList()) {
                String name = sources.relativize(f).toString();
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    String why = violation(lines.get(i));
                    if (why == null || (why.startsWith("an fd's number") && ALLOWED.containsKey(name))) continue;
                    found.add(name + ":" + (i + 1) + ": " + why + ": " + lines.get(i).strip());
                }
            }
        }
        return found;
    }

    private static String violation(String line) {
        String code = line.replaceAll("//.*$", "").replaceAll("^\\s*\\*.*$", "").replaceAll("/\\*.*?\\*/", "");
        if (POSIX.matcher(code).find()) return "a Posix call";
        if (FOREIGN.matcher(code).find()) return "java.lang.foreign";
        if (INT_FD.matcher(code).find()) return "a bare fd int";
        if (NUMBER_OUT.matcher(code).find()) return "an fd's number out of its object";
        return null;
    }
}

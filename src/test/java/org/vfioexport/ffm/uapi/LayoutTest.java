package org.vfioexport.ffm.uapi;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.ffm.posix.Errno;

import java.io.IOException;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.PaddingLayout;
import java.lang.foreign.SequenceLayout;
import java.lang.foreign.StructLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Compares every constant and every struct layout the project binds by hand with the C headers they come from.
 *
 * <p>What is compared is found by reflection, so nothing can be forgotten: every static final integer field of
 * every class in {@code ffm.uapi} and {@code ffm.posix} (private ones and nested classes included), every
 * {@link Errno}, and every {@link StructLayout} in {@code ffm.uapi}. The Java name is the C name; the header side
 * is asked by a C file generated from that list, compiled with {@code gcc -S} (never linked or run) and read back
 * from the assembly, in the test's temp dir.
 *
 * <ol>
 *   <li>Against the header snapshot committed in {@code src/test/resources/uapi/} (see its README: unmodified
 *       files of a 6.19+ {@code linux-libc-dev}, compiled with {@code -nostdinc}, so nothing of the machine's own
 *       headers leaks in). Runs offline; it fails, never skips (gcc is a build requirement).</li>
 *   <li>Against the machine's own {@code /usr/include} ({@code linux-libc-dev}), when it is installed and new enough
 *       to define the 6.19 dma-buf feature; otherwise that part is skipped with the version found.</li>
 * </ol>
 * The few socket constants that only glibc defines ({@link #LIBC_ONLY}) are compared with {@code <sys/socket.h>}.
 */
class LayoutTest {
    private static final long STEP_TIMEOUT_S = 120;
    /** The packages whose constants must match a header. */
    private static final List<String> PACKAGES = List.of("org.vfioexport.ffm.uapi", "org.vfioexport.ffm.posix");
    /** Names glibc defines and the kernel's uAPI headers do not (the kernel's are in include/linux/socket.h). */
    static final Set<String> LIBC_ONLY = Set.of("AF_UNIX", "SOCK_STREAM", "SOCK_DGRAM", "SOCK_CLOEXEC",
            "SOCK_NONBLOCK", "SCM_RIGHTS", "MSG_NOSIGNAL", "MSG_DONTWAIT", "MSG_CTRUNC", "MSG_CMSG_CLOEXEC");
    /** Fields that hold a header's value under a name of their own: the C expression that gives it. */
    static final Map<String, String> EXPRESSIONS = Map.of("SOCKADDR_UN_SIZE", "sizeof(struct sockaddr_un)");
    /** Integer fields that are the project's own choices, not a header's. */
    static final Set<String> NOT_FROM_A_HEADER = Set.of("GuardedBuffer.GUARD", "Fd.CLOSED", "Fd.USER",
            "UnixSocket.MAX_FDS_PER_MESSAGE");

    @TempDir
    static Path work;

    private static Path snapshot;
    private static Map<String, Long> fromSnapshot;
    private static Map<String, Long> fromLibc;

    @BeforeAll
    static void askTheSnapshot() throws Exception {
        Path home = Path.of(System.getProperty("vfioexport.home", ".")).toAbsolutePath();
        snapshot = home.resolve("src/test/resources/uapi");
        assertTrue(Files.isRegularFile(snapshot.resolve("headers.txt")), "no header snapshot at " + snapshot);
        assertTrue(onPath("gcc"), "gcc is needed to compare the uAPI bindings with the header snapshot (apt-get install gcc)");
        Path include = snapshot.resolve("include");
        Path arch = include.resolve(triplet());
        assertTrue(Files.isDirectory(arch), "the snapshot has no asm/ headers for " + triplet() + " (see its README)");
        fromSnapshot = probe("snapshot", uapiIncludes(), uapiAsks(),
                List.of("-nostdinc", "-I", arch.toString(), "-I", include.toString()));
        fromLibc = probe("libc", "#include <sys/socket.h>\n",
                LIBC_ONLY.stream().sorted().map(n -> new Ask(n, n)).toList(), List.of());
    }

    // ---- 1. the committed snapshot ---------------------------------------------------------------------------

    @TestFactory
    List<DynamicTest> constantsMatchTheSnapshot() throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        for (Constant k : constants()) {
            Map<String, Long> header = LIBC_ONLY.contains(k.name) ? fromLibc : fromSnapshot;
            tests.add(DynamicTest.dynamicTest(k.owner + "." + k.name + " = " + k.value, () -> compare(header, k)));
        }
        assertTrue(tests.size() > 100, "expected every binding constant, found " + tests.size());
        return tests;
    }

    @TestFactory
    List<DynamicTest> structsMatchTheSnapshot() throws Exception {
        return structTests(fromSnapshot);
    }

    @Test
    void theSnapshotIsA619OrLaterHeaderSet() {
        long code = fromSnapshot.get("LINUX_VERSION_CODE");
        assertTrue(code >= version(6, 19), "the snapshot is " + versionName(code) + "; it must be 6.19 or later");
        assertEquals(11, fromSnapshot.get("VFIO_DEVICE_FEATURE_DMA_BUF"), "VFIO_DEVICE_FEATURE_DMA_BUF in the snapshot");
    }

    /** The scan found the classes it is meant to cover: it cannot pass by finding nothing. */
    @Test
    void everyBindingClassIsScanned() throws Exception {
        Set<String> owners = new TreeSet<>();
        for (Constant k : constants()) owners.add(k.owner);
        for (String c : List.of("Vfio", "Iommufd", "PciRegs", "Posix", "Errno")) {
            assertTrue(owners.contains(c), c + " not scanned; scanned: " + owners);
        }
        Set<String> structs = new TreeSet<>();
        for (StructLayout s : structs()) structs.add(s.name().orElseThrow());
        assertTrue(structs.containsAll(Set.of("vfio_device_feature", "vfio_device_feature_dma_buf", "iommu_ioas_alloc")),
                "structs scanned: " + structs);
    }

    // ---- 2. the machine's own linux-libc-dev ------------------------------------------------------------------

    @TestFactory
    List<DynamicTest> constantsAndStructsMatchTheInstalledHeaders() throws Exception {
        Path installed = Path.of("/usr/include/linux/vfio.h");
        if (!Files.isRegularFile(installed)) {
            return skipped("linux-libc-dev is not installed (no " + installed + "): only the snapshot was compared");
        }
        Map<String, Long> version = probe("installed-version", """
                #include <linux/version.h>
                #include <linux/vfio.h>
                #ifdef VFIO_DEVICE_FEATURE_DMA_BUF
                #define HAS_DMA_BUF 1
                #else
                #define HAS_DMA_BUF 0
                #endif
                """, List.of(new Ask("LINUX_VERSION_CODE", "LINUX_VERSION_CODE"), new Ask("has_dma_buf", "HAS_DMA_BUF")),
                List.of());
        long code = version.get("LINUX_VERSION_CODE");
        if (version.get("has_dma_buf") != 1) {
            return skipped("the installed linux-libc-dev is " + versionName(code)
                    + ", older than 6.19 (no VFIO_DEVICE_FEATURE_DMA_BUF): only the committed snapshot was compared");
        }
        Map<String, Long> header = probe("installed", uapiIncludes(), uapiAsks(), List.of());
        List<DynamicTest> tests = new ArrayList<>();
        for (Constant k : constants()) {
            Map<String, Long> h = LIBC_ONLY.contains(k.name) ? fromLibc : header;
            tests.add(DynamicTest.dynamicTest(k.owner + "." + k.name + " = " + k.value + " (" + versionName(code) + ")",
                    () -> compare(h, k)));
        }
        tests.addAll(structTests(header));
        return tests;
    }

    /** One test that reports {@code why} as skipped, so the reason shows in the test report. */
    private static List<DynamicTest> skipped(String why) {
        return List.of(DynamicTest.dynamicTest("installed linux-libc-dev", () -> assumeTrue(false, why)));
    }

    // ---- comparisons -----------------------------------------------------------------------------------------

    private static void compare(Map<String, Long> header, Constant k) {
        Long c = header.get(k.name);
        assertNotNull(c, k.name + " missing from the probe output");
        // the Java field may be narrower than the C value (int for an unsigned long flag): compare its bits
        long mask = k.bits == 64 ? -1L : (1L << k.bits) - 1;
        assertEquals(c & mask, k.value & mask, k.owner + "." + k.name);
    }

    private static List<DynamicTest> structTests(Map<String, Long> header) throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        for (StructLayout s : structs()) {
            String n = s.name().orElseThrow();
            tests.add(DynamicTest.dynamicTest("sizeof(struct " + n + ") = " + s.byteSize(), () -> {
                assertEquals(header.get("sizeof." + n), s.byteSize(), "sizeof");
                assertEquals(header.get("alignof." + n), s.byteAlignment(), "alignof");
            }));
            long offset = 0;
            for (MemoryLayout m : s.memberLayouts()) {
                if (!(m instanceof PaddingLayout)) {
                    String f = n + "." + m.name().orElseThrow();
                    long off = offset;
                    boolean flexible = isFlexible(m);
                    tests.add(DynamicTest.dynamicTest("offsetof(" + f + ") = " + off, () -> {
                        assertEquals(header.get("offsetof." + f), off, "offsetof " + f);
                        if (!flexible) assertEquals(header.get("sizeof." + f), m.byteSize(), "sizeof " + f);
                    }));
                }
                offset += m.byteSize();
            }
        }
        return tests;
    }

    private static boolean isFlexible(MemoryLayout m) {
        return m instanceof SequenceLayout seq && seq.elementCount() == 0;
    }

    // ---- what the Java side declares ---------------------------------------------------------------------------

    /** A constant of a binding class: its C name, value and width in bits. */
    record Constant(String owner, String name, long value, int bits) {}

    static List<Constant> constants() throws Exception {
        List<Constant> out = new ArrayList<>();
        for (Class<?> c : bindingClasses()) {
            String owner = c.getName().substring(c.getPackageName().length() + 1).replace('$', '.');
            for (Field f : c.getDeclaredFields()) {
                int mod = f.getModifiers();
                if (!Modifier.isStatic(mod) || !Modifier.isFinal(mod) || f.isSynthetic()) continue;
                if (NOT_FROM_A_HEADER.contains(owner + "." + f.getName())) continue;
                Class<?> t = f.getType();
                if (t != int.class && t != long.class && t != short.class && t != byte.class) continue;
                f.setAccessible(true);
                long v = ((Number) f.get(null)).longValue();
                int bits = t == long.class ? 64 : t == int.class ? 32 : t == short.class ? 16 : 8;
                out.add(new Constant(owner, f.getName(), v, bits));
            }
        }
        for (Errno e : Errno.values()) out.add(new Constant("Errno", e.name(), e.value, 32));
        return out;
    }

    static List<StructLayout> structs() throws Exception {
        List<StructLayout> out = new ArrayList<>();
        for (Class<?> c : bindingClasses()) {
            if (!c.getPackageName().equals("org.vfioexport.ffm.uapi")) continue;
            for (Field f : c.getDeclaredFields()) {
                if (!Modifier.isStatic(f.getModifiers()) || !StructLayout.class.isAssignableFrom(f.getType())) continue;
                f.setAccessible(true);
                StructLayout s = (StructLayout) f.get(null);
                assertEquals(f.getName(), s.name().orElse(null), "a layout is named after its struct");
                out.add(s);
            }
        }
        return out;
    }

    /** Every class (nested ones included) compiled into the binding packages, found on the class path. */
    static List<Class<?>> bindingClasses() throws IOException, URISyntaxException, ClassNotFoundException {
        List<Class<?>> out = new ArrayList<>();
        ClassLoader loader = LayoutTest.class.getClassLoader();
        // the main classes' directory (target/classes), not the test classes of the same packages
        var root = Vfio.class.getProtectionDomain().getCodeSource().getLocation();
        assertEquals("file", root.getProtocol(), "the main classes are not in a directory: " + root);
        for (String pkg : PACKAGES) {
            Path dir = Path.of(root.toURI()).resolve(pkg.replace('.', '/'));
            assertTrue(Files.isDirectory(dir), "package " + pkg + " not found in " + root);
            try (Stream<Path> files = Files.list(dir)) {
                for (Path p : files.sorted().toList()) {
                    String file = p.getFileName().toString();
                    if (!file.endsWith(".class") || file.equals("package-info.class")) continue;
                    out.add(Class.forName(pkg + "." + file.substring(0, file.length() - ".class".length()), false, loader));
                }
            }
        }
        return out;
    }

    // ---- the C side ----------------------------------------------------------------------------------------------

    /** One value the probe asks the compiler for: a key for the Java side and the C expression. */
    record Ask(String key, String expression) {}

    static List<Ask> uapiAsks() throws Exception {
        List<Ask> asks = new ArrayList<>();
        asks.add(new Ask("LINUX_VERSION_CODE", "LINUX_VERSION_CODE"));
        Set<String> seen = new TreeSet<>();
        for (Constant k : constants()) {
            if (LIBC_ONLY.contains(k.name) || !seen.add(k.name)) continue;
            asks.add(new Ask(k.name, EXPRESSIONS.getOrDefault(k.name, k.name)));
        }
        for (StructLayout s : structs()) {
            String n = s.name().orElseThrow();
            asks.add(new Ask("sizeof." + n, "sizeof(struct " + n + ")"));
            asks.add(new Ask("alignof." + n, "_Alignof(struct " + n + ")"));
            for (MemoryLayout m : s.memberLayouts()) {
                if (m instanceof PaddingLayout) continue;
                String f = m.name().orElseThrow();
                asks.add(new Ask("offsetof." + n + "." + f, "__builtin_offsetof(struct " + n + ", " + f + ")"));
                if (!isFlexible(m)) asks.add(new Ask("sizeof." + n + "." + f, "sizeof(((struct " + n + " *)0)->" + f + ")"));
            }
        }
        return asks;
    }

    /** {@code #include} lines for the headers the snapshot holds, from its {@code headers.txt}. */
    private static String uapiIncludes() throws IOException {
        StringBuilder c = new StringBuilder();
        for (String h : Files.readAllLines(snapshot.resolve("headers.txt"))) {
            if (!h.isBlank() && !h.startsWith("#")) c.append("#include <").append(h.strip()).append(">\n");
        }
        return c.toString();
    }

    /**
     * Compiles {@code includes} and one {@code const long long v<i>} per ask to assembly and reads the values back.
     * Nothing is linked or run, so the same probe works for any header set the compiler can parse.
     */
    private static Map<String, Long> probe(String name, String includes, List<Ask> asks, List<String> flags) throws Exception {
        Path c = work.resolve(name + ".c"), s = work.resolve(name + ".s");
        StringBuilder source = new StringBuilder(includes);
        for (int i = 0; i < asks.size(); i++) {
            source.append("const long long v").append(i).append(" = (long long)(").append(asks.get(i).expression()).append(");\n");
        }
        Files.writeString(c, source);
        List<String> cmd = new ArrayList<>(List.of("gcc", "-std=gnu11", "-O0", "-S"));
        cmd.addAll(flags);
        cmd.addAll(List.of("-o", s.toString(), c.toString()));
        Run cc = run(work, cmd);
        if (cc.rc != 0) {
            fail("gcc (" + name + ") failed: a binding has no such name or type in these headers (a header missing from"
                    + " src/test/resources/uapi/headers.txt? a name only glibc defines, for LIBC_ONLY?)\n" + cc.tail());
        }
        Map<Integer, Long> byIndex = parseAssembly(Files.readString(s));
        Map<String, Long> out = new HashMap<>();
        for (int i = 0; i < asks.size(); i++) {
            Long v = byIndex.get(i);
            assertNotNull(v, "v" + i + " (" + asks.get(i).key() + ") not found in " + s);
            out.put(asks.get(i).key(), v);
        }
        return out;
    }

    private static final Pattern LABEL = Pattern.compile("^v(\\d+):\\s*$");
    private static final Pattern DATA = Pattern.compile("^\\s+\\.(quad|xword|8byte|dword|zero)\\s+(-?\\w+)\\s*$");

    /** {@code v12:} then {@code .quad 59} (x86-64), {@code .xword 59} (aarch64) or {@code .zero 8} for 0. */
    static Map<Integer, Long> parseAssembly(String asm) {
        Map<Integer, Long> out = new HashMap<>();
        Integer pending = null;
        for (String line : asm.split("\n")) {
            Matcher l = LABEL.matcher(line);
            if (l.matches()) {
                pending = Integer.parseInt(l.group(1));
                continue;
            }
            Matcher d = DATA.matcher(line);
            if (pending != null && d.matches()) {
                out.put(pending, d.group(1).equals("zero") ? 0L : Long.decode(d.group(2)));
                pending = null;
            }
        }
        return out;
    }

    static String triplet() {
        return switch (System.getProperty("os.arch")) {
            case "amd64", "x86_64" -> "x86_64-linux-gnu";
            case "aarch64" -> "aarch64-linux-gnu";
            default -> fail("no uAPI snapshot for os.arch " + System.getProperty("os.arch") + " (see src/test/resources/uapi/README.md)");
        };
    }

    private static long version(int major, int minor) {
        return ((long) major << 16) + ((long) minor << 8);
    }

    private static String versionName(long code) {
        return (code >> 16) + "." + ((code >> 8) & 0xff) + "." + (code & 0xff);
    }

    // ---- processes -------------------------------------------------------------------------------------------------

    record Run(int rc, String out, String err) {
        String tail() {
            String all = (out + "\n" + err).strip();
            return all.length() > 4000 ? all.substring(all.length() - 4000) : all;
        }
    }

    static Run run(Path dir, List<String> cmd) throws IOException, InterruptedException {
        Path out = Files.createTempFile(dir, "out", ".txt"), err = Files.createTempFile(dir, "err", ".txt");
        Process p = new ProcessBuilder(cmd).directory(dir.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(STEP_TIMEOUT_S, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            return new Run(-1, "", String.join(" ", cmd) + ": timed out after " + STEP_TIMEOUT_S + " s");
        }
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }

    static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) return true;
        }
        return false;
    }
}

package org.vfioexport.ffm.uapi;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.PaddingLayout;
import java.lang.foreign.SequenceLayout;
import java.lang.foreign.StructLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Compares every constant and every struct layout of {@link Vfio} and {@link Iommufd} with the real uAPI
 * headers: Debian sid's {@code linux-libc-dev} (downloaded by {@code src/test/vm/fetch-debs.sh}, never
 * installed) and a C program generated from the Java side, compiled with gcc and run. Nothing is listed twice:
 * the C program asks the header about exactly the names the Java classes declare.
 *
 * <p>Skipped, with the reason, when the package cannot be downloaded or gcc/dpkg-deb are missing.
 */
class LayoutTest {
    private static final List<Class<?>> BINDINGS = List.of(Vfio.class, Iommufd.class);
    private static final long STEP_TIMEOUT_S = 240;

    private static Map<String, Long> header;

    @BeforeAll
    static void askTheHeader() throws Exception {
        Path home = Path.of(System.getProperty("vfioexport.home", ".")).toAbsolutePath();
        Path work = home.resolve("target/uapi");
        Files.createDirectories(work);
        require(onPath("gcc"), () -> "gcc is not installed: cannot compile the header probe");
        require(onPath("dpkg-deb"), () -> "dpkg-deb is not installed: cannot unpack linux-libc-dev");

        Run fetch = run(work, List.of("bash", home.resolve("src/test/vm/fetch-debs.sh").toString(), "linux-libc-dev"));
        require(fetch.rc == 0, () -> "cannot download Debian sid linux-libc-dev: " + fetch.tail());
        String deb = fetch.out.strip().lines().reduce((a, b) -> b).orElse("");
        Path root = work.resolve("linux-libc-dev");
        Run unpack = run(work, List.of("dpkg-deb", "-x", deb, root.toString()));
        assertEquals(0, unpack.rc, () -> "dpkg-deb -x " + deb + ": " + unpack.tail());

        Path c = work.resolve("layout.c");
        Files.writeString(c, cProgram());
        Path exe = work.resolve("layout");
        Run cc = run(work, List.of("gcc", "-std=gnu11", "-Wall", "-Werror", "-I", root.resolve("usr/include").toString(),
                "-o", exe.toString(), c.toString()));
        assertEquals(0, cc.rc, () -> "gcc against " + deb + " failed: " + cc.tail());
        Run probe = run(work, List.of(exe.toString()));
        assertEquals(0, probe.rc, probe::tail);
        header = new HashMap<>();
        probe.out.lines().forEach(l -> {
            String[] kv = l.split(" ");
            header.put(kv[0], Long.parseLong(kv[1]));
        });
    }

    /**
     * Skips with the reason on a developer's machine that cannot run the probe; in CI (where {@code CI} is set and
     * the Debian archive is reachable) that is a failure, so the check can never pass by not running.
     */
    private static void require(boolean ok, java.util.function.Supplier<String> why) {
        if (System.getenv("CI") != null) assertTrue(ok, why);
        else assumeTrue(ok, why);
    }

    @TestFactory
    List<DynamicTest> constantsMatchTheHeader() throws IllegalAccessException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Constant k : constants()) {
            tests.add(DynamicTest.dynamicTest(k.name + " = " + k.value, () -> {
                Long c = header.get(k.name);
                assertNotNull(c, k.name + " missing from the probe output");
                assertEquals(c.longValue(), k.value, k.name);
            }));
        }
        assertTrue(tests.size() > 40, "expected every binding constant, found " + tests.size());
        return tests;
    }

    @TestFactory
    List<DynamicTest> structsMatchTheHeader() throws IllegalAccessException {
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
                    boolean flexible = m instanceof SequenceLayout seq && seq.elementCount() == 0;
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

    // ---- the C side ----------------------------------------------------------------------------------------

    static String cProgram() throws IllegalAccessException {
        StringBuilder c = new StringBuilder("""
                #include <stddef.h>
                #include <stdio.h>
                #include <linux/vfio.h>
                #include <linux/iommufd.h>
                #define K(n) printf("%s %lld\\n", #n, (long long)(n))
                #define S(s) printf("sizeof.%s %zu\\nalignof.%s %zu\\n", #s, sizeof(struct s), #s, _Alignof(struct s))
                #define M(s, f) printf("offsetof.%s.%s %zu\\nsizeof.%s.%s %zu\\n", #s, #f, offsetof(struct s, f), \\
                                       #s, #f, sizeof(((struct s *)0)->f))
                #define F(s, f) printf("offsetof.%s.%s %zu\\n", #s, #f, offsetof(struct s, f))
                int main(void) {
                """);
        for (Constant k : constants()) c.append("    K(").append(k.name).append(");\n");
        for (StructLayout s : structs()) {
            String n = s.name().orElseThrow();
            c.append("    S(").append(n).append(");\n");
            for (MemoryLayout m : s.memberLayouts()) {
                if (m instanceof PaddingLayout) continue;
                boolean flexible = m instanceof SequenceLayout seq && seq.elementCount() == 0;
                c.append(flexible ? "    F(" : "    M(").append(n).append(", ").append(m.name().orElseThrow()).append(");\n");
            }
        }
        return c.append("    return 0;\n}\n").toString();
    }

    record Constant(String name, long value) {}

    static List<Constant> constants() throws IllegalAccessException {
        List<Constant> out = new ArrayList<>();
        for (Class<?> b : BINDINGS) {
            for (Field f : b.getDeclaredFields()) {
                int mod = f.getModifiers();
                if (!Modifier.isPublic(mod) || !Modifier.isStatic(mod)) continue;
                if (f.getType() == int.class) out.add(new Constant(f.getName(), f.getInt(null)));
                else if (f.getType() == long.class) out.add(new Constant(f.getName(), f.getLong(null)));
            }
        }
        return out;
    }

    static List<StructLayout> structs() throws IllegalAccessException {
        List<StructLayout> out = new ArrayList<>();
        for (Class<?> b : BINDINGS) {
            for (Field f : b.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers()) && f.get(null) instanceof StructLayout s) {
                    assertEquals(f.getName(), s.name().orElse(null), "a layout is named after its struct");
                    out.add(s);
                }
            }
        }
        return out;
    }

    // ---- processes -----------------------------------------------------------------------------------------

    record Run(int rc, String out, String err) {
        String tail() {
            String all = (out + "\n" + err).strip();
            return all.length() > 2000 ? all.substring(all.length() - 2000) : all;
        }
    }

    static Run run(Path dir, List<String> cmd) throws IOException, InterruptedException {
        Path out = Files.createTempFile(dir, "out", ".txt"), err = Files.createTempFile(dir, "err", ".txt");
        try {
            Process p = new ProcessBuilder(cmd).directory(dir.toFile())
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(STEP_TIMEOUT_S, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Run(-1, "", String.join(" ", cmd) + ": timed out after " + STEP_TIMEOUT_S + " s");
            }
            return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) return true;
        }
        return false;
    }
}

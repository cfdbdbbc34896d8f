package org.vfioexport.ffm.uapi;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * uAPI and errno numbers are written in {@code ffm.uapi} / {@code ffm.posix} only, where {@link LayoutTest} checks
 * them against the headers; a copy elsewhere is a number nothing checks. This scans the main sources outside
 * {@code ffm} for the ways a copy has been written before:
 * <ul>
 *   <li>a C name of the headers given a number: {@code O_CLOEXEC = 02000000}, {@code EINVAL = 22}, or an enum
 *       constant of that name: {@code EPERM(1)};</li>
 *   <li>an errno compared with a number: {@code e.errno() == 11};</li>
 *   <li>a number labelled with an errno: {@code 5 /* EIO *&#47;}.</li>
 * </ul>
 * Referring to the ffm constant under another name ({@code GET = Vfio.VFIO_DEVICE_FEATURE_GET}) is fine.
 */
class UapiLiteralsStayInFfmTest {
    private static final String NUMBER = "-?\\(?\\s*(?:0[xX][0-9a-fA-F]+|\\d+)[lL]?\\b";
    private static final Pattern NAME_GIVEN_A_NUMBER = Pattern.compile("\\b([A-Z][A-Z0-9_]+)\\s*=\\s*" + NUMBER);
    private static final Pattern ENUM_WITH_A_NUMBER = Pattern.compile("\\b([A-Z][A-Z0-9_]+)\\(\\s*" + NUMBER + "\\s*\\)");
    /** 0 is "no errno", not a copy of one. */
    private static final Pattern ERRNO_COMPARED = Pattern.compile("errno\\w*\\(\\)\\s*[!=]=\\s*-?(?:0[xX][0-9a-fA-F]+|[1-9]\\d*)\\b");
    private static final Pattern LABELLED = Pattern.compile("\\b\\d+\\s*/\\*\\s*E[A-Z]{2,}\\s*\\*/");

    @Test
    void noUapiOrErrnoNumberOutsideFfm() throws Exception {
        Path home = Path.of(System.getProperty("vfioexport.home", ".")).toAbsolutePath();
        List<String> found = scan(home.resolve("src/main/java"), cNames(home.resolve("src/test/resources/uapi/include")));
        assertTrue(found.isEmpty(), "uAPI/errno numbers outside ffm (define them in ffm.uapi/ffm.posix and refer to them):\n"
                + String.join("\n", found));
    }

    /** The scan finds what it is meant to: each pattern on a line as it was once written. */
    @Test
    void theScanRecognisesTheFormsItLooksFor() {
        Set<String> names = Set.of("O_CLOEXEC", "O_RDWR", "EINVAL", "ELOOP");
        assertTrue(matches("    private static final int O_RDONLY = 0, O_RDWR = 2, O_CLOEXEC = 02000000;", names));
        assertTrue(matches("    private static final int EWOULDBLOCK = 11, EISDIR = 21, ELOOP = 40;", names));
        assertTrue(matches("if (e.errno() != 11) throw x;", names));
        assertTrue(matches("    EPERM(1), EINVAL(22), ELOOP(40);", names));
        assertTrue(!matches("if (e.errno() == 0) return;", names));
        assertTrue(matches("throw new PosixException(\"pread\", 5 /* EIO */);", names));
        assertTrue(!matches("    public static final int O_RDWR = Posix.O_RDWR;", names));
        assertTrue(!matches("    static final long PAGE = 4096;", names));
    }

    private static boolean matches(String line, Set<String> names) {
        return violation(line, names) != null;
    }

    static List<String> scan(Path sources, Set<String> names) throws IOException {
        List<String> found = new ArrayList<>();
        Path ffm = sources.resolve("org/vfioexport/ffm");
        try (Stream<Path> files = Files.walk(sources)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java") && !p.startsWith(ffm)).sorted().toList()) {
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    String why = violation(lines.get(i), names);
                    if (why != null) found.add(sources.relativize(f) + ":" + (i + 1) + ": " + why + ": " + lines.get(i).strip());
                }
            }
        }
        return found;
    }

    private static String violation(String line, Set<String> names) {
        String code = line.replaceAll("//.*$", "");
        Matcher m = NAME_GIVEN_A_NUMBER.matcher(code);
        while (m.find()) {
            if (names.contains(m.group(1))) return m.group(1) + " given a number";
        }
        Matcher e = ENUM_WITH_A_NUMBER.matcher(code);
        while (e.find()) {
            if (names.contains(e.group(1))) return e.group(1) + " given a number (an enum of them)";
        }
        if (ERRNO_COMPARED.matcher(code).find()) return "errno compared with a number";
        if (LABELLED.matcher(line).find()) return "a number labelled with an errno";
        return null;
    }

    /** Every macro the header snapshot defines, and every constant name the ffm bindings declare. */
    static Set<String> cNames(Path include) throws Exception {
        Set<String> names = new TreeSet<>();
        Pattern define = Pattern.compile("^\\s*#\\s*define\\s+([A-Z_][A-Z0-9_]*)\\b");
        try (Stream<Path> files = Files.walk(include)) {
            for (Path h : files.filter(p -> p.toString().endsWith(".h")).toList()) {
                for (String l : Files.readAllLines(h)) {
                    Matcher m = define.matcher(l);
                    if (m.find()) names.add(m.group(1));
                }
            }
        }
        for (LayoutTest.Constant k : LayoutTest.constants()) names.add(k.name());
        assertTrue(names.containsAll(Set.of("O_CLOEXEC", "EINVAL", "VFIO_DEVICE_FEATURE_GET", "PCI_COMMAND")),
                "the header snapshot at " + include + " was not read");
        return names;
    }
}

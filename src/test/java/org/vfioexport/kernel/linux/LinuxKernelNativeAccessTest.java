package org.vfioexport.kernel.linux;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A JVM that denies native access gets a cause that names the flag, not a stack trace. */
class LinuxKernelNativeAccessTest {
    @Test
    void deniedNativeAccessNamesTheFlag() throws Exception {
        Path home = Path.of(System.getProperty("vfioexport.home", ".")).toAbsolutePath();
        String cp = home.resolve("target/classes") + File.pathSeparator + home.resolve("target/test-classes");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(List.of(java.toString(), "--illegal-native-access=deny", "-cp", cp,
                PrintUnavailabilityCause.class.getName())).redirectErrorStream(true).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "child JVM did not finish in 60 s");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains(LinuxKernel.NATIVE_ACCESS_FLAG), out);
    }
}

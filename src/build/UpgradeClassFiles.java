import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassFileVersion;
import java.lang.classfile.ClassHierarchyResolver;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeTransform;
import java.lang.constant.ClassDesc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

/**
 * Rewrites the class files of a jar older than Java 6 (major version < 50) as Java 8 class files with stack map
 * frames, the same bytecode otherwise: {@code java src/build/UpgradeClassFiles.java JAR} (in place).
 *
 * <p>Why: picocli ships Java 5 class files. The JVM can neither keep such classes in an AOT cache or CDS archive
 * ("old class": it skips them) nor check them with the fast type-checking verifier, so every CLI call loaded and
 * verified picocli's largest classes from the jar, about a third of the call. The build gives the CLI
 * ({@code bin/vfio-export}) a copy rewritten by this, in {@code target/cli/}; everything else uses the original.
 */
public class UpgradeClassFiles {
    public static void main(String[] args) throws IOException {
        Path jar = Path.of(args[0]);
        Map<String, byte[]> entries = new LinkedHashMap<>();
        try (ZipInputStream in = new ZipInputStream(Files.newInputStream(jar))) {
            for (ZipEntry e; (e = in.getNextEntry()) != null; ) if (!e.isDirectory()) entries.put(e.getName(), in.readAllBytes());
        }
        // stack maps need the class hierarchy: the JDK's, and the jar's own classes
        ClassHierarchyResolver own = ClassHierarchyResolver.ofResourceParsing((ClassDesc c) -> {
            String d = c.descriptorString();
            byte[] b = entries.get(d.substring(1, d.length() - 1) + ".class");
            return b == null ? null : (InputStream) new ByteArrayInputStream(b);
        });
        ClassFile cf = ClassFile.of(ClassFile.ClassHierarchyResolverOption.of(ClassHierarchyResolver.defaultResolver().orElse(own)),
                ClassFile.StackMapsOption.GENERATE_STACK_MAPS);
        ClassTransform java8 = (builder, element) -> {
            if (element instanceof ClassFileVersion) builder.withVersion(ClassFile.JAVA_8_VERSION, 0);
            else builder.with(element);
        };
        int upgraded = 0;
        Path tmp = jar.resolveSibling(jar.getFileName() + ".tmp");
        try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(tmp))) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                byte[] b = e.getValue();
                if (e.getKey().endsWith(".class") && !e.getKey().startsWith("META-INF/")) {
                    ClassModel m = cf.parse(b);
                    if (m.majorVersion() < ClassFile.JAVA_6_VERSION) {
                        // rebuilding every method body is what makes the library compute the stack maps
                        b = cf.transformClass(m, java8.andThen(ClassTransform.transformingMethodBodies(CodeTransform.ACCEPT_ALL)));
                        upgraded++;
                    }
                }
                out.putNextEntry(new ZipEntry(e.getKey()));
                out.write(b);
                out.closeEntry();
            }
        }
        Files.move(tmp, jar, StandardCopyOption.REPLACE_EXISTING);
        System.out.println("UpgradeClassFiles: " + upgraded + " class files of " + jar + " now Java 8 with stack maps");
    }
}

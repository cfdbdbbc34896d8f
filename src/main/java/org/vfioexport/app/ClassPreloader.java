package org.vfioexport.app;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Loads, at start-up, everything the daemon could otherwise load lazily from disk later: every class of the
 * daemon itself, and an open handle on every jar of the class path. A class loaded for the first time at the
 * moment the fd table is full (an error path, say) needs one more fd to read its class file or open its jar; the
 * {@code NoClassDefFoundError} it then throws escapes from the middle of a callback and an answer is lost. After
 * this, classes come from jars that are already open, and the JDK's own from its mapped module image.
 */
final class ClassPreloader {
    private static final String ROOT = "org/vfioexport/";

    private ClassPreloader() {}

    /** Returns how many classes were loaded. */
    static int preload() {
        ClassLoader loader = ClassPreloader.class.getClassLoader();
        try {
            // walking every resource of one name opens every jar of the class path once, for good
            Enumeration<?> manifests = loader.getResources("META-INF/MANIFEST.MF");
            while (manifests.hasMoreElements()) manifests.nextElement();
            Path source = Path.of(ClassPreloader.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return Files.isDirectory(source) ? fromDirectory(source, loader) : fromJar(source, loader);
        } catch (IOException | URISyntaxException | SecurityException e) {
            return 0; // not fatal: the daemon only loses this protection
        }
    }

    private static int fromDirectory(Path classes, ClassLoader loader) throws IOException {
        Path root = classes.resolve(ROOT);
        if (!Files.isDirectory(root)) return 0;
        int n = 0;
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String rel = classes.relativize(p).toString();
                if (rel.endsWith(".class") && load(rel, loader)) n++;
            }
        }
        return n;
    }

    private static int fromJar(Path jar, ClassLoader loader) throws IOException {
        int n = 0;
        try (JarFile f = new JarFile(jar.toFile())) {
            Enumeration<JarEntry> entries = f.entries();
            while (entries.hasMoreElements()) {
                String name = entries.nextElement().getName();
                if (name.startsWith(ROOT) && name.endsWith(".class") && load(name, loader)) n++;
            }
        }
        return n;
    }

    private static boolean load(String classFile, ClassLoader loader) {
        String name = classFile.substring(0, classFile.length() - ".class".length()).replace('/', '.');
        try {
            Class.forName(name, false, loader);
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false; // a class that cannot load now would not load later either
        }
    }
}

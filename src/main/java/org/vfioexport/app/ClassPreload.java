package org.vfioexport.app;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Loads every class of the application at start-up, so that none is loaded lazily at the fd limit.
 *
 * <p>A class is loaded the first time a path runs, and loading it from a directory on the class path (the build's
 * {@code target/classes}, as tests and development runs use) opens its file. At the fd limit that open fails, the
 * JVM throws NoClassDefFoundError and remembers the failed resolution in the caller: that call site then fails for
 * the life of the process even once fds are free (a connection's first queued write did this to every later
 * greeting). Classes inside a jar are read through the jar's fd, opened once and kept, so the installed daemon
 * does not need this; loading ~200 small classes costs a few milliseconds either way. Classes are loaded, not
 * initialised: no static initialiser runs early.
 */
final class ClassPreload {
    private static final Logger log = LoggerFactory.getLogger(ClassPreload.class);

    private ClassPreload() {}

    /** Loads the classes found next to {@code anchor} (its directory tree or its jar); returns how many. */
    static int classesBeside(Class<?> anchor) {
        List<String> names = classNames(anchor);
        ClassLoader loader = anchor.getClassLoader();
        openEveryJar(loader);
        int loaded = 0;
        for (String name : names) {
            try {
                Class.forName(name, false, loader);
                loaded++;
            } catch (ClassNotFoundException | LinkageError e) {
                // it would fail later as well; only the paths that use it are affected
                log.warn("cannot load {} at start-up: {}", name, e.toString());
            }
        }
        return loaded;
    }

    /**
     * The class loader opens a jar of the class path the first time it looks in it, which may be late (a library
     * first used on an error path): asking every entry for one resource opens them all now, for good.
     */
    private static void openEveryJar(ClassLoader loader) {
        try {
            Enumeration<?> all = loader.getResources("META-INF/MANIFEST.MF");
            while (all.hasMoreElements()) all.nextElement();
        } catch (IOException e) {
            log.warn("cannot open the class path's jars at start-up: {}", e.toString());
        }
    }

    private static List<String> classNames(Class<?> anchor) {
        CodeSource source = anchor.getProtectionDomain().getCodeSource();
        if (source == null) return List.of();
        try {
            Path root = Path.of(source.getLocation().toURI());
            return Files.isDirectory(root) ? inDirectory(root) : inJar(root);
        } catch (URISyntaxException e) {
            throw new IllegalStateException("cannot locate the classes of " + anchor, e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the classes of " + anchor, e);
        }
    }

    private static List<String> inDirectory(Path root) throws IOException {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(f -> isClass(f.toString())).map(f -> className(root.relativize(f).toString())).toList();
        }
    }

    private static List<String> inJar(Path jar) throws IOException {
        List<String> names = new ArrayList<>();
        try (JarFile f = new JarFile(jar.toFile())) {
            for (Enumeration<JarEntry> e = f.entries(); e.hasMoreElements(); ) {
                String n = e.nextElement().getName();
                if (isClass(n)) names.add(className(n));
            }
        }
        return names;
    }

    private static boolean isClass(String file) {
        return file.endsWith(".class") && !file.endsWith("module-info.class") && !file.endsWith("package-info.class");
    }

    private static String className(String file) {
        return file.substring(0, file.length() - ".class".length()).replace('/', '.').replace('\\', '.');
    }
}

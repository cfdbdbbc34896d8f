package org.vfioexport.device;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Who watches which export of one device. Touched only by the device's steps. A watch ends with its export's
 * release, with {@code export.watch ack:false}, or with its watcher's connection.
 */
final class Watches {
    private final Map<String, Set<Watcher>> byExport = new HashMap<>();

    /** False if {@code w} already watched {@code exportId}. */
    boolean add(String exportId, Watcher w) {
        return byExport.computeIfAbsent(exportId, k -> new LinkedHashSet<>()).add(w);
    }

    boolean remove(String exportId, Watcher w) {
        Set<Watcher> s = byExport.get(exportId);
        if (s == null || !s.remove(w)) return false;
        if (s.isEmpty()) byExport.remove(exportId);
        return true;
    }

    boolean watches(String exportId, Watcher w) {
        Set<Watcher> s = byExport.get(exportId);
        return s != null && s.contains(w);
    }

    /** The watchers of {@code exportId}, in the order they asked; empty when none. */
    List<Watcher> of(String exportId) {
        Set<Watcher> s = byExport.get(exportId);
        return s == null ? List.of() : List.copyOf(s);
    }

    /** The export was released: its watches end. */
    void drop(String exportId) {
        byExport.remove(exportId);
    }

    /** Every watch of {@code w} ends (its connection closed); returns the exports it watched. */
    List<String> removeAll(Watcher w) {
        List<String> out = new ArrayList<>();
        byExport.entrySet().removeIf(en -> {
            if (en.getValue().remove(w)) out.add(en.getKey());
            return en.getValue().isEmpty();
        });
        return out;
    }

    boolean isEmpty() {
        return byExport.isEmpty();
    }
}

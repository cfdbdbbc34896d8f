package org.vfioexport.api;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Every protocol method, registered in one place and discoverable with {@code rpc.methods}. */
public final class MethodRegistry {
    /** Methods an unauthorised client may still call: they reveal nothing about devices. */
    private static final List<String> PUBLIC = List.of("rpc.methods");

    private final Map<String, RpcMethod> methods = new LinkedHashMap<>();

    public MethodRegistry register(String name, RpcMethod m) {
        if (methods.putIfAbsent(name, m) != null) throw new IllegalArgumentException("method registered twice: " + name);
        return this;
    }

    public RpcMethod get(String name) {
        return methods.get(name);
    }

    public List<String> names() {
        return List.copyOf(methods.keySet());
    }

    public boolean isPublic(String name) {
        return PUBLIC.contains(name);
    }

    public Map<String, RpcMethod> all() {
        return Collections.unmodifiableMap(methods);
    }
}

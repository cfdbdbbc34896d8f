package org.vfioexport.client;

import java.util.Map;

/** Typed reads of decoded JSON values (see {@link JsonText}). */
final class Values {
    private Values() {}

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(Object v) {
        return v instanceof Map<?, ?> m ? (Map<String, Object>) m : null;
    }

    static long number(Object v, String what) {
        if (v instanceof Number n) return n.longValue();
        throw new IllegalArgumentException(what + " is not a number: " + v);
    }
}

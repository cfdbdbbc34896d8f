package org.vfioexport.kernel.sim;

/** Which kernel generation the simulator reproduces. */
public enum SimSemantics {
    /** 6.19 / 7.0: a revoke notifies importers and returns at once. */
    V6_19,
    /** 7.1+: a revoke also waits until every importer has unmapped; device close drains with a revoke first. */
    V7_1;

    public static SimSemantics parse(String s) {
        return switch (s) {
            case "6.19", "7.0", "V6_19" -> V6_19;
            case "7.1", "7.2", "V7_1" -> V7_1;
            default -> throw new IllegalArgumentException("unknown kernel semantics '" + s + "' (6.19 or 7.1)");
        };
    }
}

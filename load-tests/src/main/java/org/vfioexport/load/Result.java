package org.vfioexport.load;

import org.HdrHistogram.Histogram;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What one scenario measured, and the rules it broke. */
final class Result implements java.io.Serializable {
    final String name;
    final String description;
    final Map<String, Object> params = new LinkedHashMap<>();
    final Map<String, Object> metrics = new LinkedHashMap<>();
    final Map<String, Histogram> latencies = new LinkedHashMap<>();
    final Map<String, double[]> timelines = new LinkedHashMap<>();
    final List<String> violations = new ArrayList<>();
    final List<String> notes = new ArrayList<>();
    long wallMillis;

    Result(String name, String description) {
        this.name = name;
        this.description = description;
    }

    Result param(String k, Object v) {
        params.put(k, v);
        return this;
    }

    Result metric(String k, Object v) {
        metrics.put(k, v);
        return this;
    }

    double num(String k) {
        Object v = metrics.get(k);
        return v instanceof Number n ? n.doubleValue() : Double.NaN;
    }

    void violation(String v) {
        violations.add(v);
    }
}

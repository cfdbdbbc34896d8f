package org.vfioexport.testutil;

/** Reading a Prometheus text exposition in tests. */
public final class Prometheus {
    private Prometheus() {}

    /** The value of the sample {@code series} (name and labels as Micrometer writes them); -1 when absent. */
    public static double sample(String text, String series) {
        for (String line : text.split("\n")) {
            if (line.startsWith(series + " ")) return Double.parseDouble(line.substring(series.length() + 1));
        }
        return -1;
    }
}

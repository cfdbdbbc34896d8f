package org.vfioexport.cli;

import java.math.BigInteger;

/** Byte counts as people type them: {@code 4096}, {@code 0x1000}, {@code 4K}, {@code 2M}, {@code 1GiB}. */
public final class Sizes {
    private static final BigInteger U64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    private Sizes() {}

    private static final java.util.regex.Pattern SIZE =
            java.util.regex.Pattern.compile("(?i)(0x[0-9a-f]+|[0-9]+)\\s*(?:([kmgtpe])(?:i?b)?|b)?");

    /** The value as the 64 bits of a u64 (above 2^63-1 it is a negative long). */
    public static long parse(String text) {
        java.util.regex.Matcher m = SIZE.matcher(text.trim());
        if (!m.matches()) throw new IllegalArgumentException("not a size: '" + text + "' (examples: 4096, 0x1000, 4K, 2M)");
        String digits = m.group(1);
        BigInteger v = digits.toLowerCase().startsWith("0x") ? new BigInteger(digits.substring(2), 16) : new BigInteger(digits);
        if (m.group(2) != null) v = v.shiftLeft(10 * ("kmgtpe".indexOf(Character.toLowerCase(m.group(2).charAt(0))) + 1));
        if (v.compareTo(U64_MAX) > 0) throw new IllegalArgumentException("size out of range 0 to 2^64-1: '" + text + "'");
        return v.longValue();
    }

    /** Size options and parameters: a malformed one is a usage error (exit 2), reported by picocli. */
    static final class Converter implements picocli.CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            try {
                return parse(value);
            } catch (IllegalArgumentException e) {
                throw new picocli.CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    /** A readable size: 16 KiB, 64 MiB, or bytes when not a whole unit. */
    public static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;
        long v = bytes;
        while (u < units.length - 1 && v >= 1024 && v % 1024 == 0) {
            v /= 1024;
            u++;
        }
        return Long.toUnsignedString(v) + " " + units[u];
    }
}

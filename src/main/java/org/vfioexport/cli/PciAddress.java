package org.vfioexport.cli;

import java.util.regex.Pattern;

/**
 * Device names as people copy them: lspci's short form {@code 01:00.0} means {@code 0000:01:00.0} (domain 0, as
 * lspci prints it without {@code -D}), and hex digits in either case. Anything else is passed on unchanged, for
 * the daemon to judge.
 */
final class PciAddress {
    private PciAddress() {}

    private static final Pattern SHORT = Pattern.compile("[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]");
    private static final Pattern FULL = Pattern.compile("[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]");

    static String normalise(String device) {
        if (SHORT.matcher(device).matches()) return "0000:" + device.toLowerCase(java.util.Locale.ROOT);
        if (FULL.matcher(device).matches()) return device.toLowerCase(java.util.Locale.ROOT);
        return device;
    }
}

package org.vfioexport.load;

import java.nio.file.Path;
import java.util.List;

final class Report {
    Report(Path home, Path out, List<Result> results, Path jmh, Path jfr) {}
    void write() {}
}

package org.vfioexport.kernel;

/** What a vfio-pci region is, in the protocol's words. */
public enum RegionKind {
    MMIO("mmio"), IO("io"), CONFIG("config"), ROM("rom"), VGA("vga"), ABSENT("absent");

    public final String wire;

    RegionKind(String wire) {
        this.wire = wire;
    }
}

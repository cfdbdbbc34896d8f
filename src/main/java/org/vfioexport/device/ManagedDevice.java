package org.vfioexport.device;

/** What the manager needs of a device beyond its handle. */
interface ManagedDevice extends DeviceHandle {
    /** Exports alive now; callable from any thread. */
    int exportCount();

    /**
     * Operations waiting for admission now (queued behind an exclusive one, or an exclusive one waiting for shared
     * ones to finish); any thread. For tests and diagnostics: it says where a device's operations wait.
     */
    int waitingForAdmission();

    /** Shutdown: a revocation handshake under way goes on at once, as if its deadline had passed. */
    void cutHandshakeShort();
}

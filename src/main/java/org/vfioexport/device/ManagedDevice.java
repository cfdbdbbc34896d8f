package org.vfioexport.device;

/** What the manager needs of a device beyond its handle. */
interface ManagedDevice extends DeviceHandle {
    /** Exports alive now; callable from any thread. */
    int exportCount();
}

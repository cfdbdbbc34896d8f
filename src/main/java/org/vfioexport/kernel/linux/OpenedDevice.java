package org.vfioexport.kernel.linux;

/**
 * A device fd and what must be released after it is closed (the group and container, or the iommufd), as one
 * of the two opening paths produced it.
 */
record OpenedDevice(int fd, String path, Runnable afterClose) {}

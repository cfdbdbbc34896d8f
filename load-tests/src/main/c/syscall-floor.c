/* What the simulated kernel's syscalls cost per export+release, with nothing else: memfd_create, ftruncate,
 * F_ADD_SEALS (the dma-buf), dup (the copy sent to the client), and the two closes.
 * Usage: syscall-floor [N]   prints the mean in microseconds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        int fd = memfd_create("vfio-dmabuf:0000:01:00.0:bar0", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, 4096) < 0) { perror("memfd"); return 1; }
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        int d = dup(fd);
        close(d);
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000.0);
    return 0;
}

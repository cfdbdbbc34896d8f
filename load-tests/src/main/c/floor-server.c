/* The physical floor: a Unix-socket request/response that carries one fd, with no framework.
 * For every request line it receives, it answers with one sendmsg of a fixed response line of the size of an
 * export.create result, with an fd (a memfd made at start) attached by SCM_RIGHTS to its first byte.
 * Usage: floor-server SOCKET_PATH   (prints "listening" when ready; one thread per connection) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int memfd;
static const char RESPONSE[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"export_id\":\"exp-0000:01:00.0-1\",\"device\":\"0000:01:00.0\","
    "\"region\":0,\"ranges\":[{\"offset\":0,\"length\":4096}],\"size\":4096,\"state\":\"live\",\"created_seq\":1,"
    "\"fd_index\":0}}\n";

static void *serve(void *arg) {
    int c = (int)(long)arg;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(c, buf + have, sizeof buf - have, 0);
        if (n <= 0) break;
        have += (size_t)n;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - buf))) != NULL) {
            struct iovec iov = {.iov_base = (void *)RESPONSE, .iov_len = sizeof RESPONSE - 1};
            union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
            struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
            struct cmsghdr *h = CMSG_FIRSTHDR(&m);
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_RIGHTS;
            h->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(h), &memfd, sizeof(int));
            if (sendmsg(c, &m, MSG_NOSIGNAL) < 0) goto out;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
    }
out:
    close(c);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: floor-server SOCKET\n"); return 2; }
    memfd = memfd_create("floor", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, 4096) < 0) { perror("memfd"); return 1; }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    unlink(argv[1]);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 512) < 0) { perror("bind/listen"); return 1; }
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        pthread_t t;
        pthread_create(&t, NULL, serve, (void *)(long)c);
        pthread_detach(t);
    }
}

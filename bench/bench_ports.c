/*  bench_ports.c - `parley-bench ports N`: prints N distinct free TCP ports on 127.0.0.1, one
    line, space-separated, for scripts/bench.sh to hand out. All N are held open until printed so
    they differ; another process could still take one before it is used (rare on loopback). */
#include "bench.h"
#include "../common/plog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Binds a TCP socket to 127.0.0.1 on a port the kernel picks. Returns the socket and sets
   *port, or returns -1 (logged). */
static int s_bind_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        plog_error("socket_failed", "errno=%d error=\"%s\"", errno, strerror(errno));
        return -1;
    }
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        plog_error("bind_failed", "errno=%d error=\"%s\"", errno, strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(address.sin_port);
    return fd;
}

int bench_ports(int count)
{
    int fds[64], ports[64], opened = 0, rc = 0;
    for (; opened < count && opened < 64; opened++) {
        fds[opened] = s_bind_any(&ports[opened]);
        if (fds[opened] < 0) {
            rc = 1;
            break;
        }
    }
    if (rc == 0)
        for (int i = 0; i < count; i++)
            printf(i + 1 < count ? "%d " : "%d\n", ports[i]);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    return rc;
}

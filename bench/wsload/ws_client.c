/*  ws_client.c - see ws_client.h. */
#define _GNU_SOURCE /* memmem */
#include "ws_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_SCRATCH_BYTES (256u << 10) /* one read */
#define S_READ_ROUNDS 4              /* reads per readable event before yielding */
#define S_HANDSHAKE_MAX 8192         /* bytes of an upgrade answer's head */
#define S_MIN_BUFFER 4096

enum {
    S_OP_CONTINUATION = 0x0,
    S_OP_TEXT = 0x1,
    S_OP_BINARY = 0x2,
    S_OP_CLOSE = 0x8,
    S_OP_PING = 0x9,
    S_OP_PONG = 0xA
};

static const char s_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct ws_client_t {
    struct sockaddr_storage address; /* the server, resolved once */
    socklen_t address_size;
    char host_header[300];       /* host:port for the Host header */
    char *path;                  /* upgrade path, owned */
    const ws_handler_t *handler; /* borrowed */
    void *arg;                   /* borrowed, passed to callbacks */
    int epoll_fd;                /* borrowed */
    uint8_t *scratch;            /* S_SCRATCH_BYTES for reads, owned */
    uint8_t *frame;              /* an outgoing frame being built, owned */
    size_t frame_capacity;
    uint64_t prng;    /* xorshift64* state for masking keys */
    uint32_t sources; /* loopback source addresses to rotate over, or 0 */
    uint32_t next_source;
};

ws_client_t *ws_client_new(const char *host, int port, const char *path, int sources,
                           const ws_handler_t *handler, void *arg, int epoll_fd)
{
    ws_client_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0 || !found) {
        fprintf(stderr, "wsload: cannot resolve %s: %s\n", host, gai_strerror(rc));
        goto fail;
    }
    memcpy(&self->address, found->ai_addr, found->ai_addrlen);
    self->address_size = found->ai_addrlen;
    freeaddrinfo(found);
    snprintf(self->host_header, sizeof self->host_header, strchr(host, ':') ? "[%s]:%d" : "%s:%d",
             host, port);
    self->path = strdup(path);
    self->scratch = malloc(S_SCRATCH_BYTES);
    self->frame_capacity = 64 * 1024;
    self->frame = malloc(self->frame_capacity);
    if (!self->path || !self->scratch || !self->frame)
        goto fail;
    const struct sockaddr_in *ipv4 = (const struct sockaddr_in *)&self->address;
    if (self->address.ss_family == AF_INET && (ntohl(ipv4->sin_addr.s_addr) >> 24) == 127 &&
        sources > 0)
        self->sources = (uint32_t)sources;
    self->handler = handler;
    self->arg = arg;
    self->epoll_fd = epoll_fd;
    if (RAND_bytes((unsigned char *)&self->prng, sizeof self->prng) != 1 || self->prng == 0)
        self->prng = 0x9E3779B97F4A7C15ull;
    return self;
fail:
    if (!self)
        fprintf(stderr, "wsload: out of memory\n");
    ws_client_destroy(&self);
    return NULL;
}

void ws_client_destroy(ws_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ws_client_t *self = *self_p;
    free(self->path);
    free(self->scratch);
    free(self->frame);
    free(self);
    *self_p = NULL;
}

const char *ws_end_name(ws_end_t why)
{
    switch (why) {
    case WS_END_CONNECT:
        return "connect";
    case WS_END_HANDSHAKE:
        return "handshake";
    case WS_END_PROTOCOL:
        return "protocol";
    case WS_END_EOF:
        return "eof";
    case WS_END_IO:
        return "io";
    case WS_END_CLOSE:
        return "close";
    case WS_END_LOCAL:
        return "local";
    }
    return "unknown";
}

/* Returns the next 64 pseudo-random bits (masking keys need not be secret, only varied). */
static uint64_t s_random(ws_client_t *self)
{
    self->prng ^= self->prng >> 12;
    self->prng ^= self->prng << 25;
    self->prng ^= self->prng >> 27;
    return self->prng * 0x2545F4914F6CDD1Dull;
}

/* Grows *buffer to hold at least need bytes. Returns 0, or -1 when memory runs out (the
   buffer is unchanged). */
static int s_reserve(uint8_t **buffer, size_t *capacity, size_t need)
{
    if (need <= *capacity)
        return 0;
    size_t grown = *capacity < S_MIN_BUFFER ? S_MIN_BUFFER : *capacity;
    while (grown < need)
        grown *= 2;
    uint8_t *bigger = realloc(*buffer, grown);
    if (!bigger)
        return -1;
    *buffer = bigger;
    *capacity = grown;
    return 0;
}

/* Sets conn's epoll interest to EPOLLIN, plus EPOLLOUT when out is true. */
static void s_watch(ws_client_t *self, ws_conn_t *conn, bool out)
{
    struct epoll_event event = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = conn};
    epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, conn->fd, &event);
    conn->want_out = out;
}

/* Closes conn's socket and forgets its buffered bytes (keeping the buffers). */
static void s_close_socket(ws_client_t *self, ws_conn_t *conn)
{
    if (conn->fd >= 0) {
        epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
        close(conn->fd);
    }
    conn->fd = -1;
    conn->state = WS_STATE_IDLE;
    conn->want_out = false;
    conn->in_message = false;
    conn->in_size = conn->out_offset = conn->out_size = conn->message_size = 0;
}

/* Ends conn: closes its socket and calls on_end. */
static void s_end(ws_client_t *self, ws_conn_t *conn, ws_end_t why, int detail)
{
    s_close_socket(self, conn);
    self->handler->on_end(self->arg, conn, why, detail);
}

/* Writes size bytes, or queues what the kernel does not take. Returns 0, or -1 when conn
   ended (write error, or backlog over WS_MAX_BACKLOG_BYTES). */
static int s_write(ws_client_t *self, ws_conn_t *conn, const uint8_t *data, size_t size)
{
    if (conn->out_offset == conn->out_size) {
        conn->out_offset = conn->out_size = 0;
        ssize_t written = send(conn->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                s_end(self, conn, WS_END_IO, errno);
                return -1;
            }
            written = 0;
        }
        if ((size_t)written == size)
            return 0;
        data += written;
        size -= (size_t)written;
    }
    if (conn->out_offset > 0 && conn->out_size + size > conn->out_capacity) {
        memmove(conn->out, conn->out + conn->out_offset, conn->out_size - conn->out_offset);
        conn->out_size -= conn->out_offset;
        conn->out_offset = 0;
    }
    if (conn->out_size - conn->out_offset + size > WS_MAX_BACKLOG_BYTES ||
        s_reserve(&conn->out, &conn->out_capacity, conn->out_size + size) != 0) {
        s_end(self, conn, WS_END_LOCAL, ENOBUFS);
        return -1;
    }
    memcpy(conn->out + conn->out_size, data, size);
    conn->out_size += size;
    if (!conn->want_out)
        s_watch(self, conn, true);
    return 0;
}

/* Writes queued output until the kernel stops taking it. Returns 0, or -1 when conn ended. */
static int s_flush(ws_client_t *self, ws_conn_t *conn)
{
    while (conn->out_offset < conn->out_size) {
        ssize_t written = send(conn->fd, conn->out + conn->out_offset,
                               conn->out_size - conn->out_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (written < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            s_end(self, conn, WS_END_IO, errno);
            return -1;
        }
        conn->out_offset += (size_t)written;
    }
    conn->out_offset = conn->out_size = 0;
    s_watch(self, conn, false);
    return 0;
}

/* Sends one masked frame with FIN set. Returns 0, or -1 when conn ended. */
static int s_send_frame(ws_client_t *self, ws_conn_t *conn, int opcode, const uint8_t *payload,
                        size_t size)
{
    size_t header = 2 + (size < 126 ? 0 : size <= 0xFFFF ? 2 : 8) + 4;
    if (s_reserve(&self->frame, &self->frame_capacity, header + size) != 0) {
        s_end(self, conn, WS_END_LOCAL, ENOMEM);
        return -1;
    }
    uint8_t *frame = self->frame;
    frame[0] = (uint8_t)(0x80 | opcode);
    size_t at = 2;
    if (size < 126) {
        frame[1] = (uint8_t)(0x80 | size);
    } else if (size <= 0xFFFF) {
        frame[1] = 0x80 | 126;
        frame[2] = (uint8_t)(size >> 8);
        frame[3] = (uint8_t)size;
        at = 4;
    } else {
        frame[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            frame[2 + i] = (uint8_t)((uint64_t)size >> (56 - 8 * i));
        at = 10;
    }
    uint32_t key = (uint32_t)(s_random(self) >> 32);
    uint8_t mask[4];
    memcpy(mask, &key, 4);
    memcpy(frame + at, mask, 4);
    at += 4;
    uint8_t *masked = frame + at;
    for (size_t i = 0; i < size; i++)
        masked[i] = payload[i] ^ mask[i & 3];
    return s_write(self, conn, frame, at + size);
}

int ws_conn_connect(ws_client_t *self, ws_conn_t *conn)
{
    s_close_socket(self, conn);
    int fd = socket(self->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (self->sources > 0) {
        /* The port is chosen at connect time, per 4-tuple (IP_BIND_ADDRESS_NO_PORT). */
        struct sockaddr_in source = {.sin_family = AF_INET};
        source.sin_addr.s_addr = htonl(0x7F000001u + self->next_source++ % self->sources);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&source, sizeof source) != 0) {
            int error = errno;
            close(fd);
            return -error;
        }
    }
    if (connect(fd, (struct sockaddr *)&self->address, self->address_size) != 0 &&
        errno != EINPROGRESS) {
        int error = errno;
        close(fd);
        return -error;
    }
    /* Even when connect finished at once, the socket is writable: the event comes next. */
    struct epoll_event event = {.events = EPOLLOUT, .data.ptr = conn};
    if (epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    conn->fd = fd;
    conn->state = WS_STATE_CONNECTING;
    return 0;
}

/* The TCP connect finished: checks it and sends the upgrade request. */
static void s_connected(ws_client_t *self, ws_conn_t *conn)
{
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0)
        error = errno;
    if (error != 0) {
        s_end(self, conn, WS_END_CONNECT, error);
        return;
    }
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        uint64_t a = s_random(self), b = s_random(self);
        memcpy(nonce, &a, 8);
        memcpy(nonce + 8, &b, 8);
    }
    char key[32], keyed[32 + sizeof s_guid];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce); /* 24 characters */
    int keyed_size = snprintf(keyed, sizeof keyed, "%s%s", key, s_guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)keyed, (size_t)keyed_size, digest);
    EVP_EncodeBlock((unsigned char *)conn->accept, digest, sizeof digest); /* 28 characters */

    char request[1024];
    int size = snprintf(request, sizeof request,
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n",
                        self->path, self->host_header, key);
    if (size <= 0 || (size_t)size >= sizeof request) {
        s_end(self, conn, WS_END_HANDSHAKE, 0);
        return;
    }
    conn->state = WS_STATE_HANDSHAKE;
    s_watch(self, conn, false);
    s_write(self, conn, (const uint8_t *)request, (size_t)size);
}

/* Delivers one complete message. Returns 0, or -1 when conn ended. */
static int s_deliver(ws_client_t *self, ws_conn_t *conn, int opcode, const uint8_t *data,
                     size_t size)
{
    if (opcode != S_OP_TEXT)
        return 0; /* binary messages are not part of either protocol: ignored */
    if (self->handler->on_text(self->arg, conn, (const char *)data, size) != 0) {
        if (conn->state != WS_STATE_IDLE)
            s_end(self, conn, WS_END_LOCAL, 0);
        return -1;
    }
    return conn->state == WS_STATE_IDLE ? -1 : 0;
}

/* Handles one control frame. Returns 0, or -1 when conn ended. */
static int s_control(ws_client_t *self, ws_conn_t *conn, int opcode, const uint8_t *payload,
                     size_t size)
{
    if (opcode == S_OP_PING)
        return conn->state == WS_STATE_OPEN ? s_send_frame(self, conn, S_OP_PONG, payload, size)
                                            : 0;
    if (opcode == S_OP_PONG)
        return 0;
    /* close: answer it (unless it answers ours), then end */
    int code = size >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
    if (conn->state == WS_STATE_OPEN) {
        uint8_t answer[2] = {(uint8_t)(code == 1005 ? 1000 >> 8 : code >> 8),
                             (uint8_t)(code == 1005 ? 1000 & 0xFF : code & 0xFF)};
        if (s_send_frame(self, conn, S_OP_CLOSE, answer, sizeof answer) != 0)
            return -1;
    }
    s_end(self, conn, WS_END_CLOSE, code);
    return -1;
}

/* Parses the complete frames at the start of data. Returns the bytes they took, or -1 when
   conn ended (a callback, a close frame or a protocol error). */
static long s_parse(ws_client_t *self, ws_conn_t *conn, const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (size - at >= 2) {
        const uint8_t *head = data + at;
        bool fin = head[0] & 0x80;
        int opcode = head[0] & 0x0F;
        uint64_t length = head[1] & 0x7F;
        size_t header = 2;
        if (head[0] & 0x70 || head[1] & 0x80) { /* no extension was negotiated; no masking */
            s_end(self, conn, WS_END_PROTOCOL, 0);
            return -1;
        }
        if (length == 126) {
            if (size - at < 4)
                break;
            length = (uint64_t)head[2] << 8 | head[3];
            header = 4;
        } else if (length == 127) {
            if (size - at < 10)
                break;
            length = 0;
            for (int i = 0; i < 8; i++)
                length = length << 8 | head[2 + i];
            header = 10;
        }
        bool control = opcode & 0x8;
        if (length > WS_MAX_MESSAGE_BYTES || (control && (length > 125 || !fin))) {
            s_end(self, conn, WS_END_PROTOCOL, 0);
            return -1;
        }
        if (size - at - header < length)
            break; /* the rest of this frame comes in a later read */
        const uint8_t *payload = head + header;
        at += header + (size_t)length;
        int rc = 0;
        if (control) {
            if (opcode != S_OP_CLOSE && opcode != S_OP_PING && opcode != S_OP_PONG) {
                s_end(self, conn, WS_END_PROTOCOL, 0);
                return -1;
            }
            rc = s_control(self, conn, opcode, payload, (size_t)length);
        } else if (opcode == S_OP_TEXT || opcode == S_OP_BINARY) {
            if (conn->in_message) {
                s_end(self, conn, WS_END_PROTOCOL, 0);
                return -1;
            }
            if (fin) {
                rc = s_deliver(self, conn, opcode, payload, (size_t)length);
            } else {
                conn->in_message = true;
                conn->message_opcode = (uint8_t)opcode;
                conn->message_size = 0;
            }
        } else if (opcode != S_OP_CONTINUATION || !conn->in_message) {
            s_end(self, conn, WS_END_PROTOCOL, 0);
            return -1;
        }
        if (rc != 0)
            return -1;
        if (conn->in_message && !control) { /* a fragment: collect it */
            if (conn->message_size + length > WS_MAX_MESSAGE_BYTES ||
                s_reserve(&conn->message, &conn->message_capacity,
                          conn->message_size + (size_t)length) != 0) {
                s_end(self, conn, WS_END_PROTOCOL, 0);
                return -1;
            }
            memcpy(conn->message + conn->message_size, payload, (size_t)length);
            conn->message_size += (size_t)length;
            if (fin) {
                conn->in_message = false;
                if (s_deliver(self, conn, conn->message_opcode, conn->message,
                              conn->message_size) != 0)
                    return -1;
            }
        }
    }
    return (long)at;
}

/* Parses conn->in (which holds a handshake answer or frames) and keeps what is left. */
static void s_process_in(ws_client_t *self, ws_conn_t *conn)
{
    size_t start = 0;
    if (conn->state == WS_STATE_HANDSHAKE) {
        const uint8_t *end = memmem(conn->in, conn->in_size, "\r\n\r\n", 4);
        if (!end) {
            if (conn->in_size > S_HANDSHAKE_MAX)
                s_end(self, conn, WS_END_HANDSHAKE, 0);
            return;
        }
        size_t head = (size_t)(end - conn->in) + 4;
        conn->in[head - 2] = '\0'; /* the head becomes a string: lines end with \r\n */
        const char *text = (const char *)conn->in;
        int status = 0;
        if (sscanf(text, "HTTP/1.1 %d", &status) != 1 || status != 101) {
            s_end(self, conn, WS_END_HANDSHAKE, status);
            return;
        }
        bool accepted = false;
        for (const char *line = strstr(text, "\r\n"); line; line = strstr(line, "\r\n")) {
            line += 2;
            if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0) {
                const char *value = line + 21;
                while (*value == ' ' || *value == '\t')
                    value++;
                size_t length = strcspn(value, " \t\r");
                accepted =
                    length == strlen(conn->accept) && memcmp(value, conn->accept, length) == 0;
            }
        }
        if (!accepted) {
            s_end(self, conn, WS_END_HANDSHAKE, status);
            return;
        }
        conn->state = WS_STATE_OPEN;
        start = head;
        self->handler->on_open(self->arg, conn);
        if (conn->state == WS_STATE_IDLE)
            return;
    }
    long used = s_parse(self, conn, conn->in + start, conn->in_size - start);
    if (used < 0)
        return;
    start += (size_t)used;
    memmove(conn->in, conn->in + start, conn->in_size - start);
    conn->in_size -= start;
}

/* Reads what the socket has and handles it. */
static void s_readable(ws_client_t *self, ws_conn_t *conn)
{
    for (int round = 0; round < S_READ_ROUNDS; round++) {
        /* The common case, whole frames and nothing left over, is parsed from scratch. */
        bool direct = conn->in_size == 0 && conn->state != WS_STATE_HANDSHAKE;
        if (!direct && s_reserve(&conn->in, &conn->in_capacity, conn->in_size + 65536) != 0) {
            s_end(self, conn, WS_END_LOCAL, ENOMEM);
            return;
        }
        uint8_t *buffer = direct ? self->scratch : conn->in + conn->in_size;
        size_t room = direct ? S_SCRATCH_BYTES : conn->in_capacity - conn->in_size;
        ssize_t got = recv(conn->fd, buffer, room, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                s_end(self, conn, WS_END_IO, errno);
            return;
        }
        if (got == 0) {
            s_end(self, conn, WS_END_EOF, 0);
            return;
        }
        if (direct) {
            long used = s_parse(self, conn, buffer, (size_t)got);
            if (used < 0)
                return;
            size_t left = (size_t)got - (size_t)used;
            if (left > 0) {
                if (s_reserve(&conn->in, &conn->in_capacity, left) != 0) {
                    s_end(self, conn, WS_END_LOCAL, ENOMEM);
                    return;
                }
                memcpy(conn->in, buffer + used, left);
                conn->in_size = left;
            }
        } else {
            conn->in_size += (size_t)got;
            s_process_in(self, conn);
            if (conn->state == WS_STATE_IDLE)
                return;
        }
        if ((size_t)got < room)
            return; /* drained */
    }
}

void ws_conn_event(ws_client_t *self, ws_conn_t *conn, uint32_t events)
{
    if (conn->state == WS_STATE_IDLE)
        return; /* ended earlier in this batch of events */
    if (conn->state == WS_STATE_CONNECTING) {
        s_connected(self, conn);
        return;
    }
    if ((events & EPOLLOUT) && conn->want_out && s_flush(self, conn) != 0)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        s_readable(self, conn);
}

int ws_conn_send_text(ws_client_t *self, ws_conn_t *conn, const char *data, size_t size)
{
    if (conn->state != WS_STATE_OPEN)
        return -1;
    return s_send_frame(self, conn, S_OP_TEXT, (const uint8_t *)data, size);
}

void ws_conn_close(ws_client_t *self, ws_conn_t *conn, uint16_t code)
{
    if (conn->state != WS_STATE_OPEN) {
        ws_conn_abort(self, conn);
        return;
    }
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    if (s_send_frame(self, conn, S_OP_CLOSE, payload, sizeof payload) == 0)
        conn->state = WS_STATE_CLOSING;
}

void ws_conn_abort(ws_client_t *self, ws_conn_t *conn)
{
    s_close_socket(self, conn);
}

void ws_conn_release(ws_client_t *self, ws_conn_t *conn)
{
    s_close_socket(self, conn);
    free(conn->in);
    free(conn->out);
    free(conn->message);
    conn->in = conn->out = conn->message = NULL;
    conn->in_capacity = conn->out_capacity = conn->message_capacity = 0;
}

/*  relay_lws.c - parley-relay-lws: the bare libwebsockets "room relay" of the websocket
    benchmark, the ceiling for a websocket relay on this machine. It does what the gateway's
    websocket path must do at the least (frames in, fan-out to a room, frames out, a bound on
    each socket's backlog) and nothing else: no JSON beyond a cheap look at the join, no bus,
    no auth, no UTF-8 validation (the gateway does not ask lws for it either). relay_node.js is
    the same protocol on Node.js's `ws`; the benchmark runs both next to parley-gateway.

    Protocol:
      * listens on 127.0.0.1, port from `--port N` or RELAY_PORT (0: one the system picks);
        websocket upgrade on any path (clients use /ws); no TLS, no permessage-deflate;
      * a socket's first text frame must be {"type":"join","room":"<name>"} (1..64 bytes,
        no quote, backslash or control character; found by a cheap scan, not a JSON parser);
        the answer is {"type":"joined","room":"<name>"}; anything else is closed with 1008;
      * every later text frame is sent verbatim to every other member of the room, never back
        to its sender; a binary frame closes the socket with 1003; a frame over 64 KB with 1009;
      * a socket leaves its room when it closes; an empty room is freed;
      * a socket with more than 1,000 frames or 1 MB waiting to go out is closed with 1008;
      * pings are answered by lws.

    Memory: lws gives each socket its wsi, the protocol's rx buffer (RX_BUFFER_BYTES) and the
    s_socket_t below (56 bytes); the outbox and the buffer that reassembles a fragmented
    frame are allocated only while they hold something. A frame fanned out to a room is one
    reference-counted copy shared by every recipient's outbox.

    Threading: one thread, on a libev loop of ours (epoll, as parley-gateway runs: a
    like-for-like ceiling), run a turn at a time. SIGTERM and SIGINT arrive on a
    signalfd that lws polls as a raw file; the loop then ends and lws_context_destroy closes
    every socket (each one's CLOSED callback frees what it holds). Prints `listening port=N`
    on stdout once ready; logs lws errors and warnings on stderr, nothing per frame. */
#include <libwebsockets.h>

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define RX_BUFFER_BYTES 1024 /* lws allocates this (+ LWS_PRE) for each socket */
#define MAX_FRAME_BYTES (64 * 1024)
#define MAX_PENDING_FRAMES 1000u
#define MAX_PENDING_BYTES (1u << 20)
#define MAX_ROOM_BYTES 64
#define CLOSE_GRACE_S 5 /* a closing slow consumer is dropped after this */

/* One outgoing frame, shared by every outbox it is in; freed with its last reference. */
typedef struct {
    uint32_t refs;
    uint32_t size;         /* payload bytes, after the LWS_PRE headroom */
    unsigned char bytes[]; /* LWS_PRE bytes for lws's header, then the payload */
} s_frame_t;

/* A socket's frames waiting to go out: a ring that grows up to MAX_PENDING_FRAMES. */
typedef struct {
    uint32_t head; /* index of the oldest frame */
    uint32_t count;
    uint32_t capacity;
    size_t bytes; /* payload bytes of the frames held */
    s_frame_t **ring;
} s_outbox_t;

typedef struct s_room s_room_t;

/* lws's per-session data: zeroed by lws, ours from ESTABLISHED to CLOSED. */
typedef struct s_socket {
    struct lws *wsi;
    s_room_t *room;               /* NULL until the join */
    struct s_socket *prev, *next; /* the room's members */
    s_outbox_t *outbox;           /* NULL while nothing waits */
    unsigned char *rx;            /* a frame being reassembled; NULL between frames */
    uint32_t rx_size;
    bool closing; /* over its backlog: close with 1008 when writable */
} s_socket_t;

struct s_room {
    s_room_t *next; /* next room in this hash bucket */
    s_socket_t *members;
    uint32_t hash;
    uint32_t member_count;
    size_t name_size;
    char name[];
};

/* The relay: the rooms, hashed by name with chaining; the table doubles past one room per
   bucket. The lws context's user pointer. */
typedef struct {
    s_room_t **buckets;
    size_t bucket_count; /* a power of two */
    size_t room_count;
    bool stopping; /* a signal arrived */
} s_relay_t;

/* ---- frames and outboxes ------------------------------------------------------------------ */

/* Returns a new frame holding a copy of the payload with one reference for each of refs, or
   NULL when memory runs out. */
static s_frame_t *s_frame_new(const void *payload, size_t size, uint32_t refs)
{
    s_frame_t *self = malloc(sizeof *self + LWS_PRE + size);
    if (!self)
        return NULL;
    self->refs = refs;
    self->size = (uint32_t)size;
    memcpy(self->bytes + LWS_PRE, payload, size);
    return self;
}

/* Drops one reference; the last one frees the frame. Can't fail. */
static void s_frame_release(s_frame_t *self)
{
    if (--self->refs == 0)
        free(self);
}

/* Releases every frame held and frees the outbox; sets *self_p to NULL. Tolerates NULL. */
static void s_outbox_destroy(s_outbox_t **self_p)
{
    s_outbox_t *self = *self_p;
    if (!self)
        return;
    for (uint32_t i = 0; i < self->count; i++)
        s_frame_release(self->ring[(self->head + i) % self->capacity]);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

/* Appends a frame to the socket's outbox, which is created on demand, and asks lws for a
   writable callback when it was empty. The outbox takes the caller's reference to frame.
   Returns 0; -1 when the socket is over its backlog (the caller keeps the reference then, and
   closes the socket) or memory runs out. */
static int s_outbox_push(s_socket_t *socket, s_frame_t *frame)
{
    s_outbox_t *self = socket->outbox;
    if (!self) {
        self = calloc(1, sizeof *self);
        if (!self)
            return -1;
        socket->outbox = self;
    }
    if (self->count >= MAX_PENDING_FRAMES || self->bytes + frame->size > MAX_PENDING_BYTES)
        return -1;
    if (self->count == self->capacity) {
        uint32_t capacity = self->capacity ? self->capacity * 2 : 4;
        if (capacity > MAX_PENDING_FRAMES)
            capacity = MAX_PENDING_FRAMES;
        s_frame_t **ring = malloc(capacity * sizeof *ring);
        if (!ring)
            return -1;
        for (uint32_t i = 0; i < self->count; i++)
            ring[i] = self->ring[(self->head + i) % self->capacity];
        free(self->ring);
        self->ring = ring;
        self->capacity = capacity;
        self->head = 0;
    }
    self->ring[(self->head + self->count) % self->capacity] = frame;
    self->count++;
    self->bytes += frame->size;
    if (self->count == 1)
        lws_callback_on_writable(socket->wsi);
    return 0;
}

/* Removes and returns the oldest frame (the caller owns its reference); NULL when none. */
static s_frame_t *s_outbox_pop(s_outbox_t *self)
{
    if (!self || self->count == 0)
        return NULL;
    s_frame_t *frame = self->ring[self->head];
    self->head = (self->head + 1) % self->capacity;
    self->count--;
    self->bytes -= frame->size;
    return frame;
}

/* A socket that cannot keep up: what waits for it is dropped, the close goes out with the
   next writable callback, and lws drops the socket if that never comes. Can't fail. */
static void s_socket_overflow(s_socket_t *socket)
{
    if (socket->closing)
        return;
    socket->closing = true;
    s_outbox_destroy(&socket->outbox);
    lws_callback_on_writable(socket->wsi);
    lws_set_timeout(socket->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

/* ---- rooms -------------------------------------------------------------------------------- */

static uint32_t s_hash(const char *name, size_t size)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ (unsigned char)name[i]) * 16777619u;
    return hash;
}

/* Doubles the bucket array. On error the table is unaltered (and merely slower). */
static void s_rooms_grow(s_relay_t *self)
{
    size_t count = self->bucket_count ? self->bucket_count * 2 : 1024;
    s_room_t **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return;
    for (size_t i = 0; i < self->bucket_count; i++) {
        s_room_t *room = self->buckets[i];
        while (room) {
            s_room_t *next = room->next;
            room->next = buckets[room->hash & (count - 1)];
            buckets[room->hash & (count - 1)] = room;
            room = next;
        }
    }
    free(self->buckets);
    self->buckets = buckets;
    self->bucket_count = count;
}

/* Returns the room with this name, created when missing; NULL when memory runs out. */
static s_room_t *s_room_require(s_relay_t *self, const char *name, size_t size)
{
    if (self->room_count >= self->bucket_count)
        s_rooms_grow(self);
    if (!self->buckets)
        return NULL;
    uint32_t hash = s_hash(name, size);
    s_room_t **bucket = &self->buckets[hash & (self->bucket_count - 1)];
    for (s_room_t *room = *bucket; room; room = room->next)
        if (room->hash == hash && room->name_size == size && memcmp(room->name, name, size) == 0)
            return room;
    s_room_t *room = calloc(1, sizeof *room + size);
    if (!room)
        return NULL;
    room->hash = hash;
    room->name_size = size;
    memcpy(room->name, name, size);
    room->next = *bucket;
    *bucket = room;
    self->room_count++;
    return room;
}

static void s_room_join(s_room_t *room, s_socket_t *socket)
{
    socket->room = room;
    socket->prev = NULL;
    socket->next = room->members;
    if (room->members)
        room->members->prev = socket;
    room->members = socket;
    room->member_count++;
}

/* Takes the socket out of its room, and frees the room when it is left empty. Can't fail. */
static void s_room_leave(s_relay_t *self, s_socket_t *socket)
{
    s_room_t *room = socket->room;
    if (!room)
        return;
    if (socket->prev)
        socket->prev->next = socket->next;
    else
        room->members = socket->next;
    if (socket->next)
        socket->next->prev = socket->prev;
    socket->room = NULL;
    socket->prev = socket->next = NULL;
    if (--room->member_count > 0)
        return;
    s_room_t **link = &self->buckets[room->hash & (self->bucket_count - 1)];
    while (*link != room)
        link = &(*link)->next;
    *link = room->next;
    self->room_count--;
    free(room);
}

/* ---- frames from clients ------------------------------------------------------------------ */

/* Finds "key": "<value>" in a JSON object's text and points at the value's bytes. A cheap scan,
   not a parser: a value with an escape or a control character is refused. Returns 0, or -1
   when the key or a plain string value is missing. */
static int s_json_string(const char *json, size_t size, const char *key, const char **value,
                         size_t *value_size)
{
    size_t key_size = strlen(key);
    const char *end = json + size;
    for (const char *at = json; at + key_size + 2 <= end; at++) {
        if (at[0] != '"' || memcmp(at + 1, key, key_size) != 0 || at[key_size + 1] != '"')
            continue;
        const char *p = at + key_size + 2;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p++ != ':')
            continue;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        if (p >= end || *p++ != '"')
            continue;
        const char *start = p;
        while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            p++;
        if (p >= end || *p != '"')
            return -1;
        *value = start;
        *value_size = (size_t)(p - start);
        return 0;
    }
    return -1;
}

/* The first frame: a join. Returns 0 when the socket joined its room (the answer is queued), or
   -1 when the frame is not a valid join or memory runs out (the caller closes the socket). */
static int s_on_join(s_relay_t *self, s_socket_t *socket, const char *json, size_t size)
{
    const char *type, *room_name;
    size_t type_size, room_size;
    while (size && (*json == ' ' || *json == '\t' || *json == '\r' || *json == '\n'))
        json++, size--;
    if (size == 0 || *json != '{' || s_json_string(json, size, "type", &type, &type_size) ||
        type_size != 4 || memcmp(type, "join", 4) != 0 ||
        s_json_string(json, size, "room", &room_name, &room_size) || room_size == 0 ||
        room_size > MAX_ROOM_BYTES)
        return -1;
    char answer[MAX_ROOM_BYTES + 32];
    int answer_size = snprintf(answer, sizeof answer, "{\"type\":\"joined\",\"room\":\"%.*s\"}",
                               (int)room_size, room_name);
    s_room_t *room = s_room_require(self, room_name, room_size);
    if (!room)
        return -1;
    s_room_join(room, socket);
    s_frame_t *frame = s_frame_new(answer, (size_t)answer_size, 1);
    if (!frame || s_outbox_push(socket, frame) != 0) {
        free(frame);
        return -1;
    }
    return 0;
}

/* Sends a member's frame to every other member of its room. A member over its backlog is
   closed; running out of memory drops the frame. Can't fail otherwise. */
static void s_relay(s_socket_t *sender, const void *payload, size_t size)
{
    uint32_t others = sender->room->member_count - 1;
    if (others == 0)
        return;
    s_frame_t *frame = s_frame_new(payload, size, others);
    if (!frame)
        return;
    for (s_socket_t *peer = sender->room->members; peer; peer = peer->next) {
        if (peer == sender)
            continue;
        if (peer->closing || s_outbox_push(peer, frame) != 0) {
            s_socket_overflow(peer);
            s_frame_release(frame);
        }
    }
}

/* Closes the socket with a status and a short reason; returns -1 for the callback to return. */
static int s_close(struct lws *wsi, enum lws_close_status status, const char *reason)
{
    lws_close_reason(wsi, status, (unsigned char *)reason, strlen(reason));
    return -1;
}

/* One complete text frame from a client. Returns 0, or -1 to close the socket. */
static int s_on_frame(s_relay_t *self, struct lws *wsi, s_socket_t *socket, const void *payload,
                      size_t size)
{
    if (socket->room) {
        s_relay(socket, payload, size);
        return 0;
    }
    if (s_on_join(self, socket, payload, size) != 0)
        return s_close(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, "first frame must be a join");
    return 0;
}

/* A piece of a frame from a client: whole frames are handled from lws's buffer, pieces are
   put together first. Returns 0, or -1 to close the socket. */
static int s_on_receive(s_relay_t *self, struct lws *wsi, s_socket_t *socket, const void *in,
                        size_t len)
{
    if (lws_frame_is_binary(wsi))
        return s_close(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
    bool last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (last && !socket->rx)
        return s_on_frame(self, wsi, socket, in, len);
    if (socket->rx_size + len > MAX_FRAME_BYTES)
        return s_close(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "frame too large");
    unsigned char *grown = realloc(socket->rx, socket->rx_size + len + 1);
    if (!grown)
        return -1;
    socket->rx = grown;
    memcpy(socket->rx + socket->rx_size, in, len);
    socket->rx_size += (uint32_t)len;
    if (!last)
        return 0;
    int rc = s_on_frame(self, wsi, socket, socket->rx, socket->rx_size);
    free(socket->rx);
    socket->rx = NULL;
    socket->rx_size = 0;
    return rc;
}

/* Writes the oldest waiting frame (one lws_write per writable callback, as lws asks). Returns
   0, or -1 to close the socket. */
static int s_on_writable(struct lws *wsi, s_socket_t *socket)
{
    if (socket->closing)
        return s_close(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too slow");
    s_frame_t *frame = s_outbox_pop(socket->outbox);
    if (!frame)
        return 0;
    int written = lws_write(wsi, frame->bytes + LWS_PRE, frame->size, LWS_WRITE_TEXT);
    bool failed = written < (int)frame->size;
    s_frame_release(frame);
    if (failed)
        return -1;
    if (socket->outbox->count)
        lws_callback_on_writable(wsi);
    else
        s_outbox_destroy(&socket->outbox);
    return 0;
}

static int s_relay_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    s_relay_t *self = lws_context_user(lws_get_context(wsi));
    s_socket_t *socket = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: /* not an upgrade */
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
            return -1;
        return lws_http_transaction_completed(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        socket->wsi = wsi;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return s_on_receive(self, wsi, socket, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s_on_writable(wsi, socket);
    case LWS_CALLBACK_CLOSED:
        s_room_leave(self, socket);
        s_outbox_destroy(&socket->outbox);
        free(socket->rx);
        socket->rx = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The signalfd, polled by lws as a raw file: SIGTERM or SIGINT stops the loop. */
static int s_signal_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    (void)user, (void)in, (void)len;
    if (reason != LWS_CALLBACK_RAW_RX_FILE)
        return 0;
    struct signalfd_siginfo info;
    int fd = lws_get_socket_fd(wsi);
    if (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
        s_relay_t *self = lws_context_user(lws_get_context(wsi));
        self->stopping = true;
    }
    return 0;
}

/* Returns the port from --port N or RELAY_PORT, or -1 when neither is a valid port. */
static int s_port(int argc, char **argv)
{
    const char *text = getenv("RELAY_PORT");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            text = argv[++i];
        else
            return -1;
    }
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    long port = strtol(text, &end, 10);
    return errno || *end || port < 0 || port > 65535 ? -1 : (int)port;
}

int main(int argc, char **argv)
{
    int port = s_port(argc, argv);
    if (port < 0) {
        fprintf(stderr, "usage: parley-relay-lws --port N (or RELAY_PORT=N)\n"
                        "  a websocket room relay on 127.0.0.1, the benchmark's baseline\n");
        return 2;
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    int signal_fd = -1;
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0 ||
        (signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        fprintf(stderr, "relay: signalfd failed: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    s_relay_t relay = {0};
    struct lws_protocols protocols[] = {
        /* the first protocol takes upgrades that name none */
        {"relay", s_relay_callback, sizeof(s_socket_t), RX_BUFFER_BYTES, 0, NULL,
         MAX_FRAME_BYTES + 16 /* tx_packet_size: a frame goes out in one send */},
        {"relay-signal", s_signal_callback, 0, 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.user = &relay;
    info.vhost_name = "relay";
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    void *foreign_loops[1] = {loop};
    info.foreign_loops = foreign_loops;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    struct lws_context *context = loop ? lws_create_context(&info) : NULL;
    struct lws_vhost *vhost = context ? lws_get_vhost_by_name(context, "relay") : NULL;
    lws_sock_file_fd_type fd = {.filefd = signal_fd};
    if (!vhost ||
        !lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, fd, "relay-signal", NULL)) {
        fprintf(stderr, "relay: cannot listen on 127.0.0.1:%d\n", port);
        if (context)
            lws_context_destroy(context);
        return 1;
    }
    printf("listening port=%d\n", lws_get_vhost_listen_port(vhost));
    fflush(stdout);
    while (!relay.stopping)
        ev_run(loop, EVRUN_ONCE);
    lws_context_destroy(context);
    ev_loop_destroy(loop);
    free(relay.buckets);
    return 0;
}

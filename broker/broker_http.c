/*  broker_http.c - HTTP/1.1 over a ZeroMQ STREAM socket; see broker_http.h.

    A STREAM socket delivers [connection id][bytes]; an empty bytes frame announces a new or a
    closed connection. We buffer each connection's bytes until the end of the request head, then
    answer and close by sending an empty frame. */
#include "broker_http.h"
#include "broker_stats.h"
#include "broker_internal.h"
#include "../common/plog.h"

#define S_HEAD_MAX 8192
#define S_IDLE_MS 5000

typedef struct {
    char key[2 * BROKER_ROUTE_MAX + 1];
    uint8_t id[BROKER_ROUTE_MAX];
    size_t id_size;
    char head[S_HEAD_MAX + 1];
    size_t head_size;
    int64_t last_active_ms;
} s_connection_t;

struct broker_http_t {
    broker_t *broker;          /* borrowed */
    zsock_t *stream;
    zhashx_t *connections;     /* key -> s_connection_t, owns */
    size_t max_connections;
};

static void s_connection_free(void **item)
{
    free(*item);
    *item = NULL;
}

broker_http_t *broker_http_new(broker_t *broker, const char *address)
{
    broker_http_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->broker = broker;
    self->max_connections = (size_t)broker->config.http_max_connections;
    self->connections = zhashx_new();
    self->stream = zsock_new(ZMQ_STREAM);
    if (!self->connections || !self->stream)
        goto fail;
    zhashx_set_destructor(self->connections, s_connection_free);
    zsock_set_linger(self->stream, 0);
    if (zsock_bind(self->stream, "tcp://%s", address) < 0) {
        plog_error("bind_failed", "endpoint=http://%s errno=%d error=\"%s\"", address, errno,
                   zmq_strerror(errno));
        goto fail;
    }
    return self;
fail:
    broker_http_destroy(&self);
    return NULL;
}

void broker_http_destroy(broker_http_t **self_p)
{
    broker_http_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->connections);
    zsock_destroy(&self->stream);
    free(self);
    *self_p = NULL;
}

/* Sends one chunk to a connection (an empty one closes it). Never blocks the broker: a client
   that does not read loses its response. */
static void s_send(broker_http_t *self, const uint8_t *id, size_t id_size, const void *data,
                   size_t size)
{
    void *sock = zsock_resolve(self->stream);
    if (zmq_send(sock, id, id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(sock, data, size, ZMQ_DONTWAIT);
}

/* Sends data to the connection, then closes it. */
static void s_send_and_close(broker_http_t *self, s_connection_t *conn, const char *data,
                             size_t size)
{
    s_send(self, conn->id, conn->id_size, data, size);
    s_send(self, conn->id, conn->id_size, "", 0); /* closes the connection */
    zhashx_delete(self->connections, conn->key);
}

static void s_respond(broker_http_t *self, s_connection_t *conn, int status, const char *reason,
                      const char *content_type, const char *body)
{
    size_t body_size = strlen(body);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, content_type, body_size);
    char *response = malloc((size_t)n + body_size);
    if (!response) {
        zhashx_delete(self->connections, conn->key);
        return;
    }
    memcpy(response, head, (size_t)n);
    memcpy(response + n, body, body_size);
    s_send_and_close(self, conn, response, (size_t)n + body_size);
    free(response);
}

/* Answers a complete request head. */
static void s_route(broker_http_t *self, s_connection_t *conn)
{
    broker_t *broker = self->broker;
    char method[8], path[256], version[16];
    if (sscanf(conn->head, "%7s %255s %15s", method, path, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        broker->counters.http_rejected++;
        s_respond(self, conn, 400, "Bad Request", "text/plain", "malformed request\n");
        return;
    }
    broker->counters.http_requests++;
    char *query = strchr(path, '?');
    if (query)
        *query = '\0';
    if (strcmp(method, "GET") != 0) {
        s_respond(self, conn, 405, "Method Not Allowed", "text/plain", "only GET is served\n");
        return;
    }
    char *body = NULL;
    if (strcmp(path, "/healthz") == 0) {
        if (broker_stats_healthy(broker))
            s_respond(self, conn, 200, "OK", "text/plain", "ok\n");
        else
            s_respond(self, conn, 503, "Service Unavailable", "text/plain", "draining\n");
        return;
    }
    if (strcmp(path, "/stats") == 0 && (body = broker_stats_json(broker)))
        s_respond(self, conn, 200, "OK", "application/json", body);
    else if (strcmp(path, "/metrics") == 0 && (body = broker_stats_prometheus(broker)))
        s_respond(self, conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
    else if (strcmp(path, "/stats") == 0 || strcmp(path, "/metrics") == 0)
        s_respond(self, conn, 500, "Internal Server Error", "text/plain", "out of memory\n");
    else
        s_respond(self, conn, 404, "Not Found", "text/plain",
                  "not found; try /stats, /metrics or /healthz\n");
    free(body);
}

static int s_on_stream(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    broker_http_t *self = arg;
    proto_frames_t frames;
    for (int i = 0; i < 256; i++) {
        if (proto_frames_recv(&frames, zsock_resolve(sock), ZMQ_DONTWAIT) != 0)
            break;
        if (frames.count != 2 || zmq_msg_size(&frames.frames[0]) > BROKER_ROUTE_MAX) {
            proto_frames_close(&frames);
            continue;
        }
        const uint8_t *id = zmq_msg_data(&frames.frames[0]);
        size_t id_size = zmq_msg_size(&frames.frames[0]);
        const char *data = zmq_msg_data(&frames.frames[1]);
        size_t size = zmq_msg_size(&frames.frames[1]);
        char key[2 * BROKER_ROUTE_MAX + 1];
        broker_route_key(key, id, id_size);
        s_connection_t *conn = zhashx_lookup(self->connections, key);
        if (size == 0) { /* connected or disconnected */
            if (conn)
                zhashx_delete(self->connections, key);
            else if (zhashx_size(self->connections) >= self->max_connections) {
                self->broker->counters.http_rejected++;
                s_send(self, id, id_size, "", 0);
            } else if ((conn = calloc(1, sizeof *conn))) {
                memcpy(conn->key, key, sizeof conn->key);
                memcpy(conn->id, id, id_size);
                conn->id_size = id_size;
                conn->last_active_ms = zclock_mono();
                zhashx_insert(self->connections, conn->key, conn);
            }
        } else if (conn) {
            conn->last_active_ms = zclock_mono();
            if (conn->head_size + size > S_HEAD_MAX) {
                self->broker->counters.http_rejected++;
                s_respond(self, conn, 431, "Request Header Fields Too Large", "text/plain",
                          "request head over 8 KiB\n");
            } else {
                memcpy(conn->head + conn->head_size, data, size);
                conn->head_size += size;
                conn->head[conn->head_size] = '\0';
                if (strstr(conn->head, "\r\n\r\n") || strstr(conn->head, "\n\n"))
                    s_route(self, conn);
            }
        }
        proto_frames_close(&frames);
    }
    return 0;
}

int broker_http_attach(broker_http_t *self, zloop_t *loop)
{
    return zloop_reader(loop, self->stream, s_on_stream, self);
}

void broker_http_sweep(broker_http_t *self)
{
    int64_t now = zclock_mono();
    zlistx_t *idle = zlistx_new();
    if (!idle)
        return;
    for (s_connection_t *c = zhashx_first(self->connections); c;
         c = zhashx_next(self->connections))
        if (now - c->last_active_ms > S_IDLE_MS)
            zlistx_add_end(idle, c);
    for (s_connection_t *c = zlistx_first(idle); c; c = zlistx_next(idle)) {
        s_send(self, c->id, c->id_size, "", 0);
        zhashx_delete(self->connections, c->key);
    }
    zlistx_destroy(&idle);
}

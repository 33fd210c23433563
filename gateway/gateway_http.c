/*  gateway_http.c - see gateway_http.h. */
#include "gateway_http.h"
#include "gateway_static.h"
#include "../common/plog.h"
#include "../proto/proto.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define S_HEADER_MAX 8192
#define S_BUS_BATCH 512 /* answers and events taken from the bus thread per loop turn */

/* One HTTP transaction (lws's per-session data: lives while the request does). */
typedef struct {
    char route[16];        /* "installed", "uninstalled", "webhook"; "" for GET routes */
    char path[256];
    uint8_t *body;         /* request body being read, owned */
    size_t body_size;
    bool too_large;
    uint64_t ticket;       /* the call out on the bus, 0 when none */
    unsigned status;       /* response, once known */
    char content_type[48];
    uint8_t *response;     /* LWS_PRE bytes of headroom, then the body; owned */
    size_t response_size;
} s_session_t;

struct gateway_http_t {
    const gateway_config_t *config;
    gateway_bus_t *bus;
    zhashx_t *waiting;     /* ticket -> struct lws * with a call out */
    uint64_t next_ticket;
    gateway_http_stats_t stats;
    gateway_ws_t *ws;      /* websockets, borrowed */
    gateway_static_t *files; /* static files (owned); NULL when off */
    bool stop;
};

static size_t s_ticket_hash(const void *key)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    return (size_t)(x ^ (x >> 33));
}

static int s_ticket_compare(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

gateway_http_t *gateway_http_new(const gateway_config_t *config, gateway_bus_t *bus)
{
    gateway_http_t *self = calloc(1, sizeof *self);
    if (!self || !(self->waiting = zhashx_new())) {
        free(self);
        return NULL;
    }
    zhashx_set_key_hasher(self->waiting, s_ticket_hash);
    zhashx_set_key_comparator(self->waiting, s_ticket_compare);
    zhashx_set_key_duplicator(self->waiting, NULL);
    zhashx_set_key_destructor(self->waiting, NULL);
    self->config = config;
    self->bus = bus;
    self->next_ticket = 1;
    self->files = gateway_static_new(config->static_dir);
    return self;
}

void gateway_http_destroy(gateway_http_t **self_p)
{
    if (self_p && *self_p) {
        zhashx_destroy(&(*self_p)->waiting);
        gateway_static_destroy(&(*self_p)->files);
        free(*self_p);
        *self_p = NULL;
    }
}

const gateway_http_stats_t *gateway_http_stats(const gateway_http_t *self)
{
    return &self->stats;
}

/* Sets the session's response (body copied) and asks lws for a writable callback. */
static void s_respond(struct lws *wsi, s_session_t *session, unsigned status,
                      const char *content_type, const char *body, size_t size)
{
    free(session->response);
    session->response = malloc(LWS_PRE + size + 1);
    session->response_size = session->response ? size : 0;
    session->status = session->response ? status : 500;
    if (session->response && size)
        memcpy(session->response + LWS_PRE, body, size);
    snprintf(session->content_type, sizeof session->content_type, "%s", content_type);
    lws_callback_on_writable(wsi);
}

static void s_respond_error(struct lws *wsi, s_session_t *session, unsigned status,
                            const char *code, const char *message)
{
    json_t *body = json_pack("{s:s, s:s}", "error", code, "message", message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    s_respond(wsi, session, status, "application/json", text ? text : "{}",
              text ? strlen(text) : 2);
    free(text);
    json_decref(body);
}

/* The Atlassian Connect app descriptor. */
static void s_descriptor(gateway_http_t *self, struct lws *wsi, s_session_t *session)
{
    const gateway_config_t *c = self->config;
    json_t *descriptor = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s, s:s}, s:[s, s], s:{s:b}, s:{s:[{s:s, s:s}]}}",
        "key", c->app_key, "name", c->app_name, "description",
        "Real-time customer chat, persisted in Jira", "baseUrl", c->app_base_url,
        "authentication", "type", "jwt", "lifecycle", "installed", "/connect/installed",
        "uninstalled", "/connect/uninstalled", "scopes", "READ", "WRITE", "apiMigrations",
        "signed-install", 1, "modules", "webhooks", "event", "comment_created", "url",
        "/jira/webhook/comment");
    char *text = descriptor ? json_dumps(descriptor, JSON_INDENT(2)) : NULL;
    if (text)
        s_respond(wsi, session, 200, "application/json", text, strlen(text));
    else
        s_respond_error(wsi, session, 500, "internal", "out of memory");
    free(text);
    json_decref(descriptor);
}

/* Copies header token into out (NUL-terminated); returns its length, or -1 when absent or
   too long. */
static int s_header(struct lws *wsi, enum lws_token_indexes token, char *out, int size)
{
    int length = lws_hdr_total_length(wsi, token);
    if (length <= 0 || length >= size)
        return -1;
    return lws_hdr_copy(wsi, out, size, token) < 0 ? -1 : length;
}

/* Hands a finished POST to the jira worker as jira.inbound. */
static void s_forward(gateway_http_t *self, struct lws *wsi, s_session_t *session)
{
    char authorization[S_HEADER_MAX], query[4096];
    int auth_length = s_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, authorization,
                               sizeof authorization);
    int query_length = s_header(wsi, WSI_TOKEN_HTTP_URI_ARGS, query, sizeof query);
    proto_jira_inbound_t inbound = {
        .method = "POST",
        .method_len = 4,
        .path = session->path,
        .path_len = (uint32_t)strlen(session->path),
        .has_query = query_length > 0,
        .query = query,
        .query_len = query_length > 0 ? (uint32_t)query_length : 0,
        .has_authorization = auth_length > 0,
        .authorization = authorization,
        .authorization_len = auth_length > 0 ? (uint32_t)auth_length : 0,
        .body = session->body,
        .body_len = (uint32_t)session->body_size,
    };
    proto_name_set(inbound.route, session->route);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    gateway_call_t *call =
        proto_jira_inbound_encode(&inbound, &encoded) == 0
            ? gateway_call_new("jira", "jira.inbound", encoded.data, encoded.size,
                               (uint32_t)self->config->request_timeout_ms)
            : NULL;
    proto_buffer_release(&encoded);
    if (!call) {
        s_respond_error(wsi, session, 500, "internal", "out of memory");
        return;
    }
    call->ticket = session->ticket = self->next_ticket++;
    zhashx_insert(self->waiting, (void *)(uintptr_t)session->ticket, wsi);
    if (gateway_bus_call(self->bus, &call) != 0) {
        zhashx_delete(self->waiting, (void *)(uintptr_t)session->ticket);
        session->ticket = 0;
        s_respond_error(wsi, session, 503, "unavailable", "the bus is not reachable");
    }
}

/* The HTTP status for a worker's error code. */
static unsigned s_status_of(const char *code)
{
    if (strcmp(code, "unauthorized") == 0)
        return 401;
    if (strcmp(code, "bad_request") == 0)
        return 400;
    if (strcmp(code, "internal") == 0)
        return 500;
    return 503; /* degraded, timeout, overloaded, no_service, jira_unavailable, ... */
}

void gateway_http_deliver(gateway_http_t *self, gateway_call_t *call)
{
    struct lws *wsi = zhashx_lookup(self->waiting, (void *)(uintptr_t)call->ticket);
    if (!wsi)
        return; /* the client left meanwhile */
    zhashx_delete(self->waiting, (void *)(uintptr_t)call->ticket);
    s_session_t *session = lws_wsi_user(wsi);
    session->ticket = 0;
    if (call->error_code[0]) {
        self->stats.errors++;
        s_respond_error(wsi, session, s_status_of(call->error_code), call->error_code,
                        gateway_call_error(call));
    } else
        s_respond(wsi, session, 204, "text/plain", "", 0);
}

/* Starts a transaction: picks the route. Returns what the lws callback returns. */
static int s_on_request(gateway_http_t *self, struct lws *wsi, s_session_t *session,
                        const char *path)
{
    self->stats.requests++;
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    snprintf(session->path, sizeof session->path, "%s", path);
    static const struct {
        const char *path, *route;
    } posts[] = {{"/connect/installed", "installed"},
                 {"/connect/uninstalled", "uninstalled"},
                 {"/jira/webhook/comment", "webhook"}};
    for (size_t i = 0; i < sizeof posts / sizeof *posts; i++)
        if (strcmp(path, posts[i].path) == 0) {
            if (!post) {
                s_respond_error(wsi, session, 405, "method_not_allowed", "use POST");
                return 0;
            }
            snprintf(session->route, sizeof session->route, "%s", posts[i].route);
            return 0; /* the body follows */
        }
    bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    if (get && strcmp(path, "/healthz") == 0)
        s_respond(wsi, session, 200, "text/plain", "ok\n", 3);
    else if (get && strcmp(path, "/atlassian-connect.json") == 0)
        s_descriptor(self, wsi, session);
    else if (self->files && (get || head)) /* every other GET and HEAD: a file, or 404 */
        return gateway_static_serve(self->files, wsi, path);
    else if (self->files && gateway_static_exists(self->files, path))
        s_respond_error(wsi, session, 405, "method_not_allowed", "use GET or HEAD");
    else
        s_respond_error(wsi, session, 404, "not_found", "no such page");
    return 0;
}

static int s_write_response(struct lws *wsi, s_session_t *session)
{
    uint8_t headers[LWS_PRE + 1024], *start = headers + LWS_PRE, *p = start,
                                     *end = headers + sizeof headers - 1;
    if (lws_add_http_common_headers(wsi, session->status, session->content_type,
                                    session->response_size, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (session->response_size &&
        lws_write(wsi, session->response + LWS_PRE, session->response_size,
                  LWS_WRITE_HTTP_FINAL) != (int)session->response_size)
        return -1;
    free(session->response);
    session->response = NULL;
    session->status = 0;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int gateway_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
    gateway_http_t *self = lws_context_user(lws_get_context(wsi));
    s_session_t *session = user;
    if (!self)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        return self->ws && s_header(wsi, WSI_TOKEN_GET_URI, uri, sizeof uri) > 0 &&
                       strcmp(uri, "/ws") == 0
                   ? 0
                   : -1; /* websockets only at /ws */
    }
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        return self->ws ? gateway_ws_callback(self->ws, wsi, reason, user, in, len) : -1;
    case LWS_CALLBACK_HTTP:
        memset(session, 0, sizeof *session);
        return s_on_request(self, wsi, session, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        if (!session->route[0])
            return 0;
        if (session->too_large || session->body_size + len > (size_t)self->config->http_body_max) {
            session->too_large = true;
            return 0;
        } else {
            uint8_t *grown = realloc(session->body, session->body_size + len);
            if (!grown) {
                session->too_large = true;
                return 0;
            }
            session->body = grown;
            memcpy(session->body + session->body_size, in, len);
            session->body_size += len;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!session->route[0])
            return 0;
        if (session->too_large)
            s_respond_error(wsi, session, 413, "too_large", "request body too large");
        else
            s_forward(self, wsi, session);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!session || !session->status)
            return 0;
        return s_write_response(wsi, session);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (session) {
            if (session->ticket)
                zhashx_delete(self->waiting, (void *)(uintptr_t)session->ticket);
            session->ticket = 0;
            free(session->body);
            session->body = NULL;
            free(session->response);
            session->response = NULL;
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        gateway_call_t *call;
        gateway_event_t *event;
        if (!self || !self->bus)
            return 0; /* shutting down: the bus is gone */
        /* a bounded batch per turn: the sockets' own frames are read between batches, so a
           burst of answers and events does not hold up everyone's messages */
        int taken = 0;
        while (taken++ < S_BUS_BATCH && gateway_bus_next(self->bus, &call, &event)) {
            if (call && call->owner == GATEWAY_OWNER_WS && self->ws)
                gateway_ws_deliver(self->ws, call);
            else if (call)
                gateway_http_deliver(self, call);
            if (event && self->ws)
                gateway_ws_event(self->ws, event);
            gateway_call_free(&call);
            gateway_event_free(&event);
        }
        if (taken > S_BUS_BATCH)
            lws_cancel_service(lws_get_context(wsi)); /* more waiting: come back next turn */
        if (gateway_bus_stop_requested(self->bus))
            self->stop = true;
        return 0;
    }
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

bool gateway_http_stopping(const gateway_http_t *self)
{
    return self->stop;
}

void gateway_http_set_bus(gateway_http_t *self, gateway_bus_t *bus)
{
    self->bus = bus;
}

size_t gateway_http_session_size(void)
{
    size_t ws = gateway_ws_session_size();
    return sizeof(s_session_t) > ws ? sizeof(s_session_t) : ws;
}

void gateway_http_set_ws(gateway_http_t *self, gateway_ws_t *ws)
{
    self->ws = ws;
}

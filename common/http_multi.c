/*  http_multi.c - see http_multi.h.

    Owns the CURLM handle (and with it the connection cache), one CURL easy handle per
    running transfer, the list of running transfers, the zloop pollers of curl's sockets and
    the zloop timer of curl's timeout.

    How curl is mapped onto zloop:
    - CURLMOPT_SOCKETFUNCTION: each socket is one zloop poller on its fd, asking ZMQ_POLLIN
      and/or ZMQ_POLLOUT as curl wants. zloop matches pollers by fd only, so a change of events
      ends the old poller and adds a new one; CURL_POLL_REMOVE ends it. Pollers are tolerant:
      a POLLERR/POLLHUP is handed to curl (CURL_CSELECT_ERR) instead of zloop silently dropping
      the poller. The fds we registered are listed in self->sockets.
    - CURLMOPT_TIMERFUNCTION: one one-shot zloop timer, ended and replaced on each call (-1
      ends it). Its handler calls curl_multi_socket_action(CURL_SOCKET_TIMEOUT); the callback
      itself never calls curl. zloop_timer_end takes effect at the end of the loop pass, so a
      replaced timer may still fire once: the handler ignores any timer id but the current.
    - After every socket_action, finished transfers are taken one at a time from
      curl_multi_info_read and completed: removed from the multi handle, unlinked, and only
      then their callback runs, outside any curl callback. So a callback may submit (add a
      handle) or cancel another transfer (curl_multi_remove_handle also drops that
      transfer's queued DONE message, so it is never completed twice).
    - maybe_sent comes from CURLOPT_PREREQFUNCTION, which curl calls once a connection (new or
      reused) is ready and just before the request goes out: a transfer that never got there
      (refused, unresolved, timed out while connecting or queued for a connection, cancelled
      early) surely never reached the server. It stays set if curl retries on a new
      connection after a dead reused one. */
#include "http_multi.h"
#include "plog.h"

#include <ctype.h>
#include <curl/curl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define S_DEFAULT_REPLY_MAX_BYTES (8u * 1024 * 1024)
#define S_HEADER_LINES_MAX 64
#define S_HEADER_LINE_MAX_BYTES 8192
#define S_URL_MAX_BYTES 8192
#define S_RETRY_AFTER_MAX_S (365 * 24 * 3600) /* a larger Retry-After is cut to a year */

typedef struct s_transfer_t s_transfer_t;

struct s_transfer_t {
    uint64_t id;
    CURL *easy;                 /* in the client's multi handle while running */
    struct curl_slist *headers; /* owned; curl borrows it */
    http_done_fn *fn;
    void *arg;
    uint8_t *body; /* response body so far, NUL-terminated, owned */
    size_t body_size;
    size_t body_allocated;
    size_t reply_max_bytes;
    bool too_large;         /* the body passed reply_max_bytes */
    bool prereq_seen;       /* a connection was ready for the request to go out */
    int64_t retry_after_ms; /* -1 when none */
    char content_type[128];
    int64_t started_us;          /* zclock_usecs() at submit */
    char error[CURL_ERROR_SIZE]; /* curl's CURLOPT_ERRORBUFFER */
    s_transfer_t *prev, *next;   /* in the client's list of transfers */
};

typedef struct {
    int fd;
    short events; /* ZMQ_POLLIN | ZMQ_POLLOUT as registered */
} s_socket_t;

struct http_multi_t {
    zloop_t *loop; /* borrowed */
    CURLM *multi;
    s_transfer_t *transfers; /* running transfers, oldest first */
    s_transfer_t *last;
    size_t active; /* length of transfers */
    uint64_t next_id;
    int timer_id;        /* the zloop timer of curl's timeout, 0 when none */
    s_socket_t *sockets; /* fds registered as zloop pollers */
    size_t socket_count;
    size_t socket_allocated;
    int callback_depth; /* > 0 while an http_done_fn runs */
    bool destroying;    /* refuse submissions */
};

/* ---- transfers ------------------------------------------------------------------------ */

static void s_link(http_multi_t *self, s_transfer_t *transfer)
{
    transfer->prev = self->last;
    transfer->next = NULL;
    if (self->last)
        self->last->next = transfer;
    else
        self->transfers = transfer;
    self->last = transfer;
    self->active++;
}

static void s_unlink(http_multi_t *self, s_transfer_t *transfer)
{
    if (transfer->prev)
        transfer->prev->next = transfer->next;
    else
        self->transfers = transfer->next;
    if (transfer->next)
        transfer->next->prev = transfer->prev;
    else
        self->last = transfer->prev;
    transfer->prev = transfer->next = NULL;
    self->active--;
}

/* Frees a transfer that is not (or no longer) in the multi handle. */
static void s_transfer_free(s_transfer_t *transfer)
{
    if (transfer->easy)
        curl_easy_cleanup(transfer->easy);
    curl_slist_free_all(transfer->headers);
    free(transfer->body);
    free(transfer);
}

static http_failure_t s_failure_of(CURLcode code, bool too_large)
{
    switch (code) {
    case CURLE_OK:
        return HTTP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        return HTTP_E_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_E_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED: /* Content-Length said it would not fit */
        return HTTP_E_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return too_large ? HTTP_E_TOO_LARGE : HTTP_E_OTHER;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_BAD_CONTENT_ENCODING:
        return HTTP_E_TRANSPORT;
    default:
        return HTTP_E_OTHER;
    }
}

/* Takes transfer out of the client and the multi handle, calls its callback with the outcome
   (code, or HTTP_E_CANCELLED when cancelled) and frees it. Must not run inside a curl
   callback. */
static void s_complete(http_multi_t *self, s_transfer_t *transfer, CURLcode code, bool cancelled)
{
    s_unlink(self, transfer);
    curl_multi_remove_handle(self->multi, transfer->easy);

    http_response_t response = {
        .id = transfer->id,
        .failure = cancelled ? HTTP_E_CANCELLED : s_failure_of(code, transfer->too_large),
        .maybe_sent = transfer->prereq_seen,
        .body = (const uint8_t *)"",
        .retry_after_ms = transfer->retry_after_ms,
        .elapsed_us = zclock_usecs() - transfer->started_us,
    };
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &response.status);
    snprintf(response.content_type, sizeof response.content_type, "%s", transfer->content_type);
    if (response.failure == HTTP_OK) {
        if (transfer->body) {
            response.body = transfer->body;
            response.body_size = transfer->body_size;
        }
    } else if (cancelled) {
        snprintf(response.error, sizeof response.error, "cancelled");
    } else if (response.failure == HTTP_E_TOO_LARGE) {
        snprintf(response.error, sizeof response.error, "reply larger than %zu bytes",
                 transfer->reply_max_bytes);
    } else {
        snprintf(response.error, sizeof response.error, "%s",
                 *transfer->error ? transfer->error : curl_easy_strerror(code));
    }
    curl_easy_cleanup(transfer->easy);
    transfer->easy = NULL;

    self->callback_depth++;
    transfer->fn(&response, transfer->arg);
    self->callback_depth--;
    s_transfer_free(transfer);
}

/* Completes every transfer curl reports finished. Callbacks may add and remove handles
   between two reads; curl_multi_remove_handle drops a removed handle's queued message. */
static void s_drain(http_multi_t *self)
{
    CURLMsg *message;
    int queued;
    while ((message = curl_multi_info_read(self->multi, &queued))) {
        if (message->msg != CURLMSG_DONE)
            continue;
        char *private = NULL;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private);
        if (!private) /* not ours: cannot happen, but never trust it blindly */
            continue;
        s_complete(self, (s_transfer_t *)private, message->data.result, false);
    }
}

/* Lets curl act on fd (or on its timeout) and completes what finished. Only called from zloop
   handlers, so never re-entered from a curl callback. */
static void s_socket_action(http_multi_t *self, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode rc = curl_multi_socket_action(self->multi, fd, flags, &running);
    if (rc != CURLM_OK)
        plog_error("http_multi_socket_action_failed", "fd=%d error=\"%s\"", (int)fd,
                   curl_multi_strerror(rc));
    s_drain(self);
}

/* ---- zloop side ------------------------------------------------------------------------ */

static int s_on_socket_ready(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    http_multi_t *self = arg;
    int flags = 0;
    if (item->revents & ZMQ_POLLIN)
        flags |= CURL_CSELECT_IN;
    if (item->revents & ZMQ_POLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (item->revents & ZMQ_POLLERR)
        flags |= CURL_CSELECT_ERR;
    s_socket_action(self, item->fd, flags);
    return 0;
}

static int s_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    http_multi_t *self = arg;
    if (timer_id != self->timer_id)
        return 0;       /* replaced or ended, yet due in this loop pass */
    self->timer_id = 0; /* one-shot: zloop drops it after this handler */
    s_socket_action(self, CURL_SOCKET_TIMEOUT, 0);
    return 0;
}

static void s_end_poller(http_multi_t *self, int fd)
{
    zmq_pollitem_t item = {.socket = NULL, .fd = fd};
    zloop_poller_end(self->loop, &item);
}

static s_socket_t *s_socket_find(http_multi_t *self, int fd)
{
    for (size_t i = 0; i < self->socket_count; i++)
        if (self->sockets[i].fd == fd)
            return &self->sockets[i];
    return NULL;
}

/* CURLMOPT_SOCKETFUNCTION. Never fails towards curl: a socket that cannot be watched (out of
   memory) is logged and its transfer ends on its timeout, where a -1 would make curl give up
   on the whole multi handle. */
static int s_on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *socketp)
{
    (void)easy;
    (void)socketp;
    http_multi_t *self = arg;
    short events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= ZMQ_POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= ZMQ_POLLOUT;
    s_socket_t *entry = s_socket_find(self, fd);
    if (entry && entry->events == events)
        return 0;
    if (entry) { /* zloop matches by fd: end the old registration before adding another */
        s_end_poller(self, fd);
        *entry = self->sockets[--self->socket_count];
    }
    if (events == 0) /* CURL_POLL_REMOVE (or NONE) */
        return 0;
    if (self->socket_count == self->socket_allocated) {
        size_t allocated = self->socket_allocated ? self->socket_allocated * 2 : 16;
        s_socket_t *grown = realloc(self->sockets, allocated * sizeof *grown);
        if (!grown) {
            plog_error("http_multi_poller_failed", "fd=%d reason=out_of_memory", (int)fd);
            return 0;
        }
        self->sockets = grown;
        self->socket_allocated = allocated;
    }
    zmq_pollitem_t item = {.socket = NULL, .fd = fd, .events = events};
    if (zloop_poller(self->loop, &item, s_on_socket_ready, self) != 0) {
        plog_error("http_multi_poller_failed", "fd=%d reason=zloop_poller", (int)fd);
        return 0;
    }
    zloop_poller_set_tolerant(self->loop, &item);
    self->sockets[self->socket_count++] = (s_socket_t){.fd = fd, .events = events};
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: replaces the timer; never calls curl. Never fails towards curl
   (see s_on_curl_socket). */
static int s_on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    (void)multi;
    http_multi_t *self = arg;
    if (self->timer_id) {
        zloop_timer_end(self->loop, self->timer_id);
        self->timer_id = 0;
    }
    if (timeout_ms < 0)
        return 0;
    int timer_id = zloop_timer(self->loop, (size_t)timeout_ms, 1, s_on_timer, self);
    if (timer_id <= 0) {
        plog_error("http_multi_timer_failed", "timeout_ms=%ld", timeout_ms);
        return 0;
    }
    self->timer_id = timer_id;
    return 0;
}

/* ---- curl easy callbacks --------------------------------------------------------------- */

static size_t s_on_body(char *data, size_t size, size_t count, void *arg)
{
    s_transfer_t *transfer = arg;
    size_t n = size * count;
    if (n > transfer->reply_max_bytes - transfer->body_size) {
        transfer->too_large = true;
        return 0; /* curl aborts the transfer */
    }
    if (transfer->body_size + n + 1 > transfer->body_allocated) {
        size_t allocated = transfer->body_allocated ? transfer->body_allocated : 4096;
        while (allocated < transfer->body_size + n + 1)
            allocated *= 2;
        if (allocated > transfer->reply_max_bytes + 1)
            allocated = transfer->reply_max_bytes + 1;
        uint8_t *grown = realloc(transfer->body, allocated);
        if (!grown)
            return 0;
        transfer->body = grown;
        transfer->body_allocated = allocated;
    }
    memcpy(transfer->body + transfer->body_size, data, n);
    transfer->body_size += n;
    transfer->body[transfer->body_size] = '\0';
    return n;
}

/* When line (size bytes, not NUL-terminated) is header `name`, copies its value without
   surrounding blanks into out (cut to out_size - 1) and returns its full length; returns -1
   for any other line. */
static long s_header_value(const char *line, size_t size, const char *name, char *out,
                           size_t out_size)
{
    size_t name_size = strlen(name);
    if (size <= name_size || strncasecmp(line, name, name_size) != 0 || line[name_size] != ':')
        return -1;
    const char *value = line + name_size + 1;
    const char *end = line + size;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t length = (size_t)(end - value);
    size_t copied = length < out_size - 1 ? length : out_size - 1;
    memcpy(out, value, copied);
    out[copied] = '\0';
    return (long)length;
}

/* Retry-After (RFC 9110 10.2.3): delta-seconds, or an HTTP-date (any form curl_getdate
   reads). Returns milliseconds from now (0 for a past date), or -1 when value is neither. */
static int64_t s_retry_after_ms(const char *value)
{
    if (isdigit((unsigned char)*value)) {
        int64_t seconds = 0;
        for (const char *p = value; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            if (seconds < S_RETRY_AFTER_MAX_S)
                seconds = seconds * 10 + (*p - '0');
        }
        if (seconds > S_RETRY_AFTER_MAX_S)
            seconds = S_RETRY_AFTER_MAX_S;
        return seconds * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    time_t now = time(NULL);
    if (when <= now)
        return 0;
    int64_t seconds = (int64_t)(when - now);
    return (seconds > S_RETRY_AFTER_MAX_S ? S_RETRY_AFTER_MAX_S : seconds) * 1000;
}

static size_t s_on_header(char *data, size_t size, size_t count, void *arg)
{
    s_transfer_t *transfer = arg;
    size_t n = size * count;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response starts (after a 1xx, or curl's retry): forget the previous one. */
        transfer->content_type[0] = '\0';
        transfer->retry_after_ms = -1;
        return n;
    }
    char value[64];
    long length = s_header_value(data, n, "Retry-After", value, sizeof value);
    if (length >= 0 && (size_t)length < sizeof value)
        transfer->retry_after_ms = s_retry_after_ms(value);
    else if (length < 0)
        s_header_value(data, n, "Content-Type", transfer->content_type,
                       sizeof transfer->content_type);
    return n;
}

/* CURLOPT_PREREQFUNCTION: the connection is ready and the request is about to go out. */
static int s_on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
                       int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    s_transfer_t *transfer = arg;
    transfer->prereq_seen = true;
    return CURL_PREREQFUNC_OK;
}

/* ---- requests -------------------------------------------------------------------------- */

static bool s_has_control_characters(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* A line is "Name: value" (or "Name:" to suppress one of curl's headers) with a token name
   and no CR, LF or other control character but tab. */
static bool s_header_line_valid(const char *line)
{
    if (strlen(line) > S_HEADER_LINE_MAX_BYTES)
        return false;
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return false;
    for (const char *p = line; p < colon; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    for (const char *p = colon + 1; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

static bool s_request_valid(const http_request_t *request)
{
    const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    bool known = false;
    for (size_t i = 0; request->method && i < sizeof methods / sizeof *methods; i++)
        known = known || strcmp(request->method, methods[i]) == 0;
    if (!known || !request->url || request->timeout_ms <= 0 || request->connect_timeout_ms < 0)
        return false;
    if (strlen(request->url) > S_URL_MAX_BYTES || s_has_control_characters(request->url) ||
        (strncasecmp(request->url, "http://", 7) != 0 &&
         strncasecmp(request->url, "https://", 8) != 0))
        return false;
    if (request->body_size > 0 && !request->body)
        return false;
    if (request->body_size > 0 && strcmp(request->method, "GET") == 0)
        return false;
    if (request->headers) {
        size_t lines = 0;
        for (const char *const *line = request->headers; *line; line++)
            if (++lines > S_HEADER_LINES_MAX || !s_header_line_valid(*line))
                return false;
    }
    return true;
}

static long s_clamp_long(int64_t value)
{
    return value > LONG_MAX ? LONG_MAX : (long)value;
}

/* Builds the header list: the caller's lines, then "Expect:" (curl would add
   "Expect: 100-continue" to bodies over 1 MiB) and, for a body without a Content-Type, an
   empty "Content-Type:" (curl would claim application/x-www-form-urlencoded). Lines with
   nothing after the colon make curl send no such header. Returns 0 or -1 (out of memory). */
static int s_build_headers(s_transfer_t *transfer, const http_request_t *request, bool has_body)
{
    bool has_content_type = false;
    struct curl_slist *list = NULL;
    for (const char *const *line = request->headers; line && *line; line++) {
        if (strncasecmp(*line, "Content-Type:", 13) == 0)
            has_content_type = true;
        struct curl_slist *grown = curl_slist_append(list, *line);
        if (!grown)
            goto fail;
        list = grown;
    }
    struct curl_slist *grown = curl_slist_append(list, "Expect:");
    if (!grown)
        goto fail;
    list = grown;
    if (has_body && !has_content_type) {
        grown = curl_slist_append(list, "Content-Type:");
        if (!grown)
            goto fail;
        list = grown;
    }
    transfer->headers = list;
    return 0;
fail:
    curl_slist_free_all(list);
    return -1;
}

/* Sets every option of the transfer's easy handle. Returns 0, or -1 when curl refuses one
   (out of memory copying the body, mostly). */
static int s_configure(s_transfer_t *transfer, const http_request_t *request)
{
    CURL *easy = transfer->easy;
    const char *method = request->method;
    bool is_get = strcmp(method, "GET") == 0;
    bool is_delete = strcmp(method, "DELETE") == 0;
    /* POST, PUT and PATCH always carry a body (maybe empty: Content-Length: 0); DELETE only
       when given one. */
    bool has_body = !is_get && !(is_delete && request->body_size == 0);
    if (s_build_headers(transfer, request, has_body) != 0)
        return -1;
    int64_t connect_timeout_ms = request->connect_timeout_ms > 0 ? request->connect_timeout_ms
                                                                 : S_DEFAULT_CONNECT_TIMEOUT_MS;
    /* Each failed setopt adds one to failed; any makes the whole setup fail. */
    int failed = 0;
    failed += curl_easy_setopt(easy, CURLOPT_URL, request->url) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    /* loopback (local sandboxes, sidecars) never goes through an http_proxy; other hosts
       follow the usual proxy environment variables */
    if (strncmp(request->url, "http://127.0.0.1", 16) == 0 ||
        strncmp(request->url, "http://localhost", 16) == 0)
        failed += curl_easy_setopt(easy, CURLOPT_NOPROXY, "*") != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    failed +=
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, s_clamp_long(request->timeout_ms)) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, s_clamp_long(connect_timeout_ms)) !=
              CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                               (curl_off_t)transfer->reply_max_bytes) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, s_on_body) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, s_on_header) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, s_on_prereq) != CURLE_OK;
    failed += curl_easy_setopt(easy, CURLOPT_PREREQDATA, transfer) != CURLE_OK;
    if (is_get)
        failed += curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    else if (strcmp(method, "POST") != 0)
        failed += curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    if (has_body) {
        /* The size first: COPYPOSTFIELDS copies that many bytes. */
        failed += curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                   (curl_off_t)request->body_size) != CURLE_OK;
        failed += curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS,
                                   request->body ? (const char *)request->body : "") != CURLE_OK;
    }
    return failed ? -1 : 0;
}

/* ---- public ---------------------------------------------------------------------------- */

http_multi_t *http_multi_new(zloop_t *loop, long max_connections_per_host)
{
    if (!loop || max_connections_per_host < 0)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    http_multi_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    self->loop = loop;
    self->next_id = 1;
    self->multi = curl_multi_init();
    if (!self->multi)
        goto fail;
    long max_connects = 64;
    if (max_connections_per_host > 0) {
        max_connects = max_connections_per_host > 512 / 16 ? 512 : max_connections_per_host * 16;
        if (max_connects < 32)
            max_connects = 32;
    }
    CURLM *multi = self->multi;
    if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, s_on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, self) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, s_on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_TIMERDATA, self) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_connections_per_host) !=
            CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, max_connects) != CURLM_OK)
        goto fail;
    return self;
fail:
    if (self && self->multi)
        curl_multi_cleanup(self->multi);
    free(self);
    curl_global_cleanup();
    return NULL;
}

void http_multi_destroy(http_multi_t **self_p)
{
    http_multi_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->callback_depth > 0) {
        plog_error("http_multi_destroy_refused", "reason=called_from_a_callback active=%zu",
                   self->active);
        return;
    }
    self->destroying = true;
    while (self->transfers)
        s_complete(self, self->transfers, CURLE_OK, true);
    /* curl may still report the cached connections' sockets while closing them: stop
       listening to it, and end whatever is registered ourselves. */
    curl_multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, NULL);
    curl_multi_cleanup(self->multi);
    for (size_t i = 0; i < self->socket_count; i++)
        s_end_poller(self, self->sockets[i].fd);
    if (self->timer_id)
        zloop_timer_end(self->loop, self->timer_id);
    free(self->sockets);
    free(self);
    curl_global_cleanup();
    *self_p = NULL;
}

uint64_t http_multi_submit(http_multi_t *self, const http_request_t *request, http_done_fn *fn,
                           void *arg)
{
    if (!self || !request || !fn || self->destroying || !s_request_valid(request))
        return 0;
    s_transfer_t *transfer = calloc(1, sizeof *transfer);
    if (!transfer)
        return 0;
    transfer->fn = fn;
    transfer->arg = arg;
    transfer->retry_after_ms = -1;
    transfer->reply_max_bytes =
        request->reply_max_bytes ? request->reply_max_bytes : S_DEFAULT_REPLY_MAX_BYTES;
    if (transfer->reply_max_bytes > SIZE_MAX / 2) /* keeps max + 1 and doubling in range */
        transfer->reply_max_bytes = SIZE_MAX / 2;
    transfer->started_us = zclock_usecs();
    transfer->easy = curl_easy_init();
    if (!transfer->easy || s_configure(transfer, request) != 0)
        goto fail;
    /* Adding only arms curl's timer (0 ms): the transfer starts from the loop. */
    if (curl_multi_add_handle(self->multi, transfer->easy) != CURLM_OK)
        goto fail;
    transfer->id = self->next_id++;
    s_link(self, transfer);
    return transfer->id;
fail:
    s_transfer_free(transfer);
    return 0;
}

int http_multi_cancel(http_multi_t *self, uint64_t id)
{
    if (!self || id == 0)
        return -1;
    for (s_transfer_t *transfer = self->transfers; transfer; transfer = transfer->next)
        if (transfer->id == id) {
            s_complete(self, transfer, CURLE_OK, true);
            return 0;
        }
    return -1;
}

size_t http_multi_active(const http_multi_t *self)
{
    return self ? self->active : 0;
}

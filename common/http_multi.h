/*  http_multi.h - many concurrent HTTP/1.1 requests on one czmq zloop, without threads.

    Wraps one libcurl multi handle driven by curl_multi_socket_action: every socket curl wants
    watched becomes a zloop poller on its fd, and curl's one timeout becomes a one-shot zloop
    timer. A caller submits a request and gets its answer later, in a callback run from the
    loop. Connections are kept alive and reused across requests (the multi handle's connection
    cache), at most max_connections_per_host at once per host; extra requests wait in curl's
    queue for a free connection.

    Every request is HTTP/1.1 over http or https only, follows no redirect, never sends
    "Expect: 100-continue", uses no signals, sets TCP_NODELAY, and has a whole-transfer time
    limit. Replies are capped in size. Only Retry-After and Content-Type are read from the
    response headers.

    Threading: single-threaded. Everything, including the callbacks, runs on the thread that
    runs the loop; an http_multi_t must only be used from that thread.

    Callbacks: an http_done_fn may call http_multi_submit and http_multi_cancel (of other ids);
    it must not call http_multi_destroy (that call is refused and logged).

    What it does not do: retries (the caller decides, see maybe_sent and retry_after_ms),
    cookies, authentication, content decoding, HTTP/2. */
#ifndef HTTP_MULTI_H
#define HTTP_MULTI_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    HTTP_OK = 0,      /* a response arrived (any status) */
    HTTP_E_CONNECT,   /* could not connect / resolve: the request was NOT sent */
    HTTP_E_TIMEOUT,   /* timed out (may have been sent) */
    HTTP_E_TRANSPORT, /* reset, broken pipe, bad response framing (may have been sent) */
    HTTP_E_TOO_LARGE, /* the response body passed reply_max_bytes; transfer aborted */
    HTTP_E_CANCELLED, /* http_multi_cancel or destroy */
    HTTP_E_OTHER,     /* anything else (TLS verification, out of memory...): see error */
} http_failure_t;

typedef struct {
    const char *method;         /* "GET", "POST", "PUT", "PATCH" or "DELETE" */
    const char *url;            /* http:// or https:// (copied) */
    const char *const *headers; /* NULL-terminated "Name: value" lines (copied), or NULL.
                                   Do not set Expect, Content-Length or Transfer-Encoding. */
    const uint8_t *body;        /* copied; may be NULL when body_size is 0; not with GET */
    size_t body_size;
    int64_t timeout_ms;         /* whole transfer, queueing for a connection included; > 0 */
    int64_t connect_timeout_ms; /* 0: 1000 */
    size_t reply_max_bytes;     /* 0: 8 MiB */
} http_request_t;

typedef struct {
    uint64_t id; /* as returned by http_multi_submit */
    http_failure_t failure;
    bool maybe_sent;     /* false only when the request surely never reached the server:
                            the connection was never ready for the request to go out */
    long status;         /* HTTP status, 0 when none; on failures what arrived, for logs */
    const uint8_t *body; /* borrowed for the callback; NUL-terminated for convenience;
                            never NULL (empty on failures) */
    size_t body_size;
    int64_t retry_after_ms; /* from a Retry-After header (delta-seconds or HTTP-date, a past
                               date gives 0), -1 if none */
    char content_type[128]; /* the Content-Type header's value, cut to fit, "" if none */
    int64_t elapsed_us;     /* from submit to completion */
    char error[256];        /* curl's message on failure, for logs; "" on success */
} http_response_t;

/* Called once per submitted request, from the loop (or from http_multi_cancel or
   http_multi_destroy). response and everything it points to are valid only during the call. */
typedef void(http_done_fn)(const http_response_t *response, void *arg);

typedef struct http_multi_t http_multi_t;

/* Returns a new client on loop (borrowed: it must outlive the client), opening at most
   max_connections_per_host connections to any one host (0: no limit). Keeps up to
   16 x max_connections_per_host idle connections (between 32 and 512; 64 when unlimited).
   Returns NULL when max_connections_per_host is negative, loop is NULL, or curl or memory
   fails. */
http_multi_t *http_multi_new(zloop_t *loop, long max_connections_per_host);

/* Completes every request still running with HTTP_E_CANCELLED (their callbacks run and may
   not submit: submissions are refused from then on), closes all connections, removes its
   pollers and timer from the loop, frees the client and sets *self_p to NULL. Accepts NULL.
   From inside an http_done_fn it does nothing but log an error.
   Call it after zloop_start has returned, or from a reader or poller handler of the loop; not
   from a zloop timer handler while the loop goes on, and not before the loop's first start if
   the loop is started afterwards (a czmq 4.2 zloop_timer_end takes effect only at the end of a
   loop pass, so the client's timer could still fire once after the client is freed). */
void http_multi_destroy(http_multi_t **self_p);

/* Starts request (everything it points to is copied) and returns its id (>= 1); fn(arg) is
   called exactly once with the outcome, always later from the loop or from
   http_multi_cancel/destroy, never from inside this call. Returns 0 and never calls fn when
   refused: bad arguments (NULL url or fn, a URL that is not http(s) or holds control
   characters, unknown method, timeout_ms <= 0, negative connect timeout, body with GET or
   body_size without body, a header line without "Name:" or with CR/LF), out of memory, or
   the client is being destroyed. */
uint64_t http_multi_submit(http_multi_t *self, const http_request_t *request, http_done_fn *fn,
                           void *arg);

/* Stops request id; its fn is called with HTTP_E_CANCELLED before this returns. Returns 0,
   or -1 when id is unknown (already completed, being completed, or never submitted).
   Costs O(active requests). */
int http_multi_cancel(http_multi_t *self, uint64_t id);

/* Number of requests submitted whose callback has not started yet. */
size_t http_multi_active(const http_multi_t *self);

#endif

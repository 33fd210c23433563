/*  test_http_multi.c - http_multi keeps many requests in flight on one zloop, reuses
    keep-alive connections, and reports every way a request can end (timeout, oversize reply,
    reset, refused connection, cancel, destroy) with the right failure and maybe_sent.

    Each test runs a tiny HTTP/1.1 server on 127.0.0.1:<ephemeral> (one thread per connection,
    keep-alive) and drives the client from a zloop on the test thread. The server answers by
    path:
      /ok            200 "hello"
      /slow?ms=N     200 after N ms (gives up early when the client goes away)
      /big           200 with 1 MiB (Content-Length); /big?chunked=1 the same, chunked
      /retry         429 with Retry-After: 2
      /date          503 with Retry-After as an HTTP-date 30 s ahead (?past=1: an hour ago)
      /reset         closes the connection after reading the request
      /echo          200 with the request body; Content-Type tells the method and the
                     request's Content-Type */
#define _GNU_SOURCE /* memmem */
#include "../../common/http_multi.h"
#include "unit_tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_CONNECTIONS_MAX 256
#define S_PER_HOST 8
#define S_BIG_BYTES (1024 * 1024)

/* ---- the test server ------------------------------------------------------------------ */

typedef struct {
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_t threads[S_CONNECTIONS_MAX];
    int fds[S_CONNECTIONS_MAX];
    size_t count;        /* connection threads started; written by the acceptor only */
    atomic_int accepted; /* connections accepted */
    atomic_int requests; /* requests read in full */
    atomic_int expects;  /* requests that carried an Expect header */
    atomic_bool stopping;
} s_server_t;

typedef struct {
    s_server_t *server;
    int fd;
} s_connection_t;

static bool s_send_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t sent = send(fd, p, size, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return false;
        p += sent;
        size -= (size_t)sent;
    }
    return true;
}

static bool s_respond(int fd, int status, const char *reason, const char *extra_headers,
                      const char *body, size_t body_size)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     reason, body_size, extra_headers);
    size_t total = (size_t)n + body_size;
    char *message = malloc(total);
    if (!message)
        return false;
    memcpy(message, head, (size_t)n);
    memcpy(message + n, body, body_size);
    bool ok = s_send_all(fd, message, total);
    free(message);
    return ok;
}

/* Copies the value of header name (case-insensitive) from the request head into out; returns
   false when the request has no such header. */
static bool s_request_header(const char *head, size_t head_size, const char *name, char *out,
                             size_t out_size)
{
    size_t name_size = strlen(name);
    const char *end = head + head_size;
    const char *line = memchr(head, '\n', head_size); /* skip the request line */
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > name_size && strncasecmp(line, name, name_size) == 0 &&
            line[name_size] == ':') {
            const char *value = line + name_size + 1;
            while (*value == ' ')
                value++;
            size_t length = (size_t)(eol - value);
            if (length > 0 && value[length - 1] == '\r')
                length--;
            if (length >= out_size)
                length = out_size - 1;
            memcpy(out, value, length);
            out[length] = '\0';
            return true;
        }
        line = eol;
    }
    return false;
}

static bool s_send_big(int fd, bool chunked)
{
    char *body = malloc(S_BIG_BYTES);
    if (!body)
        return false;
    for (size_t i = 0; i < S_BIG_BYTES; i++)
        body[i] = (char)('a' + i % 26);
    bool ok;
    if (!chunked) {
        ok = s_respond(fd, 200, "OK", "Content-Type: text/plain\r\n", body, S_BIG_BYTES);
    } else {
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        ok = s_send_all(fd, head, strlen(head));
        for (size_t at = 0; ok && at < S_BIG_BYTES; at += 65536) {
            char size_line[32];
            snprintf(size_line, sizeof size_line, "%x\r\n", 65536);
            ok = s_send_all(fd, size_line, strlen(size_line)) && s_send_all(fd, body + at, 65536) &&
                 s_send_all(fd, "\r\n", 2);
        }
        ok = ok && s_send_all(fd, "0\r\n\r\n", 5);
    }
    free(body);
    return ok;
}

static bool s_send_dated(int fd, bool past)
{
    time_t when = time(NULL) + (past ? -3600 : 30);
    struct tm tm;
    gmtime_r(&when, &tm);
    char date[64], headers[128];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(headers, sizeof headers, "Retry-After: %s\r\n", date);
    return s_respond(fd, 503, "Service Unavailable", headers, "busy", 4);
}

/* Answers one request; returns false when the connection must close. */
static bool s_answer(int fd, const char *method, const char *path, const char *head,
                     size_t head_size, const char *body, size_t body_size)
{
    if (strcmp(path, "/ok") == 0)
        return s_respond(fd, 200, "OK", "Content-Type: text/plain\r\n", "hello", 5);
    if (strncmp(path, "/slow?ms=", 9) == 0) {
        struct pollfd item = {.fd = fd, .events = POLLIN};
        if (poll(&item, 1, atoi(path + 9)) != 0)
            return false; /* the client went away (or the server stops) */
        return s_respond(fd, 200, "OK", "Content-Type: text/plain\r\n", "slow", 4);
    }
    if (strcmp(path, "/big") == 0 || strcmp(path, "/big?chunked=1") == 0)
        return s_send_big(fd, strcmp(path, "/big") != 0);
    if (strcmp(path, "/retry") == 0)
        return s_respond(fd, 429, "Too Many Requests", "Retry-After: 2\r\n", "slow down", 9);
    if (strcmp(path, "/date") == 0 || strcmp(path, "/date?past=1") == 0)
        return s_send_dated(fd, strcmp(path, "/date") != 0);
    if (strcmp(path, "/reset") == 0) {
        shutdown(fd, SHUT_RDWR);
        return false;
    }
    if (strcmp(path, "/echo") == 0) {
        char content_type[64] = "none", headers[160];
        s_request_header(head, head_size, "Content-Type", content_type, sizeof content_type);
        snprintf(headers, sizeof headers, "Content-Type: application/x-echo; method=%s; ct=%s\r\n",
                 method, content_type);
        return s_respond(fd, 200, "OK", headers, body, body_size);
    }
    return s_respond(fd, 404, "Not Found", "", "", 0);
}

static void *s_connection_main(void *arg)
{
    s_connection_t connection = *(s_connection_t *)arg;
    free(arg);
    s_server_t *server = connection.server;
    int fd = connection.fd;
    size_t allocated = 65536, size = 0;
    char *buffer = malloc(allocated);
    while (buffer) {
        char *end;
        while (!(end = memmem(buffer, size, "\r\n\r\n", 4))) {
            if (size == allocated)
                goto done; /* a head over 64 KiB: not from our client */
            ssize_t got = recv(fd, buffer + size, allocated - size, 0);
            if (got <= 0)
                goto done;
            size += (size_t)got;
        }
        size_t head_size = (size_t)(end - buffer) + 4;
        char method[16] = "", path[256] = "", length[32] = "0", expect[64];
        if (sscanf(buffer, "%15s %255s", method, path) != 2)
            goto done;
        s_request_header(buffer, head_size, "Content-Length", length, sizeof length);
        if (s_request_header(buffer, head_size, "Expect", expect, sizeof expect))
            atomic_fetch_add(&server->expects, 1);
        size_t body_size = strtoul(length, NULL, 10);
        if (body_size > 16 * 1024 * 1024)
            goto done;
        while (size < head_size + body_size) {
            if (size == allocated) {
                allocated = head_size + body_size;
                char *grown = realloc(buffer, allocated);
                if (!grown)
                    goto done;
                buffer = grown;
            }
            ssize_t got = recv(fd, buffer + size, allocated - size, 0);
            if (got <= 0)
                goto done;
            size += (size_t)got;
        }
        atomic_fetch_add(&server->requests, 1);
        if (!s_answer(fd, method, path, buffer, head_size, buffer + head_size, body_size))
            goto done;
        size -= head_size + body_size;
        memmove(buffer, buffer + head_size + body_size, size);
    }
done:
    free(buffer);
    return NULL; /* the fd is closed by s_server_stop, after the join */
}

static void *s_acceptor_main(void *arg)
{
    s_server_t *server = arg;
    while (!atomic_load(&server->stopping)) {
        int fd = accept(server->listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break; /* shutdown() by s_server_stop */
        }
        atomic_fetch_add(&server->accepted, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s_connection_t *connection = malloc(sizeof *connection);
        if (server->count == S_CONNECTIONS_MAX || !connection) {
            free(connection);
            close(fd);
            continue;
        }
        *connection = (s_connection_t){.server = server, .fd = fd};
        if (pthread_create(&server->threads[server->count], NULL, s_connection_main, connection) !=
            0) {
            free(connection);
            close(fd);
            continue;
        }
        server->fds[server->count++] = fd;
    }
    return NULL;
}

/* Binds 127.0.0.1:0 and returns the listening fd, its port in *port. */
static int s_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t address_size = sizeof address;
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(fd, 256) != 0 || getsockname(fd, (struct sockaddr *)&address, &address_size) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(address.sin_port);
    return fd;
}

static s_server_t *s_server_start(void)
{
    s_server_t *server = calloc(1, sizeof *server);
    assert_non_null(server);
    server->listen_fd = s_listen(&server->port);
    assert_true(server->listen_fd >= 0);
    assert_int_equal(pthread_create(&server->acceptor, NULL, s_acceptor_main, server), 0);
    return server;
}

static void s_server_stop(s_server_t **server_p)
{
    s_server_t *server = *server_p;
    atomic_store(&server->stopping, true);
    shutdown(server->listen_fd, SHUT_RDWR);
    pthread_join(server->acceptor, NULL);
    close(server->listen_fd);
    for (size_t i = 0; i < server->count; i++) {
        shutdown(server->fds[i], SHUT_RDWR);
        pthread_join(server->threads[i], NULL);
        close(server->fds[i]);
    }
    free(server);
    *server_p = NULL;
}

/* ---- fixture and loop helpers --------------------------------------------------------- */

typedef struct {
    s_server_t *server;
    zloop_t *loop;
    http_multi_t *http;
    char url[128];
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fixture = calloc(1, sizeof *fixture);
    assert_non_null(fixture);
    fixture->server = s_server_start();
    fixture->loop = zloop_new();
    fixture->http = http_multi_new(fixture->loop, S_PER_HOST);
    assert_non_null(fixture->loop);
    assert_non_null(fixture->http);
    *state = fixture;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture_t *fixture = *state;
    http_multi_destroy(&fixture->http);
    zloop_destroy(&fixture->loop);
    s_server_stop(&fixture->server);
    free(fixture);
    return 0;
}

/* The URL of path on the fixture's server (valid until the next call). */
static const char *s_url(s_fixture_t *fixture, const char *path)
{
    snprintf(fixture->url, sizeof fixture->url, "http://127.0.0.1:%d%s", fixture->server->port,
             path);
    return fixture->url;
}

typedef struct {
    const atomic_int *count;
    int target;
} s_wait_t;

static int s_on_wait_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_wait_t *wait = arg;
    return atomic_load(wait->count) >= wait->target ? -1 : 0;
}

static int s_on_wait_limit(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    (void)arg;
    return -1;
}

/* Runs the loop until *count reaches target or limit_ms pass; returns whether it reached. */
static bool s_run_until(zloop_t *loop, const atomic_int *count, int target, int limit_ms)
{
    if (atomic_load(count) >= target)
        return true;
    s_wait_t wait = {.count = count, .target = target};
    int check = zloop_timer(loop, 1, 0, s_on_wait_check, &wait);
    int limit = zloop_timer(loop, (size_t)limit_ms, 1, s_on_wait_limit, NULL);
    assert_true(check > 0 && limit > 0);
    zloop_start(loop);
    zloop_timer_end(loop, check);
    zloop_timer_end(loop, limit);
    return atomic_load(count) >= target;
}

/* What one callback saw, copied out of the response. */
typedef struct {
    atomic_int calls;
    http_failure_t failure;
    bool maybe_sent;
    long status;
    int64_t retry_after_ms;
    int64_t elapsed_us;
    char content_type[128];
    char error[256];
    uint8_t *body;
    size_t body_size;
    bool body_terminated;
    int order; /* value of *sequence when it ran */
    atomic_int *sequence;
} s_result_t;

static void s_on_result(const http_response_t *response, void *arg)
{
    s_result_t *result = arg;
    atomic_fetch_add(&result->calls, 1);
    result->failure = response->failure;
    result->maybe_sent = response->maybe_sent;
    result->status = response->status;
    result->retry_after_ms = response->retry_after_ms;
    result->elapsed_us = response->elapsed_us;
    snprintf(result->content_type, sizeof result->content_type, "%s", response->content_type);
    snprintf(result->error, sizeof result->error, "%s", response->error);
    free(result->body);
    result->body = malloc(response->body_size + 1);
    memcpy(result->body, response->body, response->body_size + 1);
    result->body_size = response->body_size;
    result->body_terminated = response->body[response->body_size] == '\0';
    if (result->sequence)
        result->order = atomic_fetch_add(result->sequence, 1);
}

static uint64_t s_get(s_fixture_t *fixture, const char *path, int64_t timeout_ms,
                      size_t reply_max_bytes, s_result_t *result)
{
    http_request_t request = {.method = "GET",
                              .url = s_url(fixture, path),
                              .timeout_ms = timeout_ms,
                              .reply_max_bytes = reply_max_bytes};
    return http_multi_submit(fixture->http, &request, s_on_result, result);
}

/* CPU time this process has used, in microseconds. */
static int64_t s_cpu_us(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (int64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
           usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

/* ---- tests ---------------------------------------------------------------------------- */

typedef struct {
    s_fixture_t *fixture;
    int submitted;
    atomic_int done;
    int wrong;
    int total;
} s_many_t;

static void s_on_many(const http_response_t *response, void *arg);

static void s_submit_many(s_many_t *many)
{
    http_request_t request = {
        .method = "GET", .url = s_url(many->fixture, "/ok"), .timeout_ms = 4000};
    uint64_t id = http_multi_submit(many->fixture->http, &request, s_on_many, many);
    assert_true(id >= 1);
    many->submitted++;
}

static void s_on_many(const http_response_t *response, void *arg)
{
    s_many_t *many = arg;
    if (response->failure != HTTP_OK || response->status != 200 || response->body_size != 5 ||
        memcmp(response->body, "hello", 6) != 0)
        many->wrong++;
    atomic_fetch_add(&many->done, 1);
    if (many->submitted < many->total)
        s_submit_many(many); /* from inside the callback */
}

static void test_many_concurrent_requests_share_few_connections(void **state)
{
    s_fixture_t *fixture = *state;
    s_many_t many = {.fixture = fixture, .total = 200};
    for (int i = 0; i < 50; i++)
        s_submit_many(&many);
    assert_int_equal(http_multi_active(fixture->http), 50);
    assert_true(s_run_until(fixture->loop, &many.done, many.total, 4000));
    assert_int_equal(many.submitted, 200);
    assert_int_equal(many.wrong, 0);
    assert_int_equal(http_multi_active(fixture->http), 0);
    int accepted = atomic_load(&fixture->server->accepted);
    assert_true(accepted >= 1 && accepted <= S_PER_HOST);
    assert_int_equal(atomic_load(&fixture->server->requests), 200);
}

static void test_slow_request_times_out_while_fast_ones_complete(void **state)
{
    s_fixture_t *fixture = *state;
    atomic_int sequence = 0;
    s_result_t slow = {.sequence = &sequence};
    s_result_t fast[5] = {0};
    assert_true(s_get(fixture, "/slow?ms=3000", 300, 0, &slow) >= 1);
    for (int i = 0; i < 5; i++) {
        fast[i].sequence = &sequence;
        assert_true(s_get(fixture, "/ok", 2000, 0, &fast[i]) >= 1);
    }
    int64_t cpu_us = s_cpu_us();
    assert_true(s_run_until(fixture->loop, &sequence, 6, 3000));
    cpu_us = s_cpu_us() - cpu_us;
    assert_int_equal(slow.failure, HTTP_E_TIMEOUT);
    /* Waiting on a quiet socket costs next to nothing: no poller spins. */
    if (cpu_us > slow.elapsed_us / 3)
        fail_msg("used %ld us of CPU in %ld us", (long)cpu_us, (long)slow.elapsed_us);
    assert_true(slow.maybe_sent);
    assert_int_equal(slow.order, 5); /* last */
    assert_true(slow.elapsed_us >= 290000 && slow.elapsed_us < 1500000);
    assert_true(strlen(slow.error) > 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fast[i].failure, HTTP_OK);
        assert_int_equal(fast[i].status, 200);
        assert_string_equal((char *)fast[i].body, "hello");
        free(fast[i].body);
    }
    free(slow.body);
}

static void test_reply_over_the_cap_is_too_large(void **state)
{
    s_fixture_t *fixture = *state;
    atomic_int sequence = 0;
    s_result_t declared = {.sequence = &sequence}, chunked = {.sequence = &sequence},
               whole = {.sequence = &sequence};
    assert_true(s_get(fixture, "/big", 2000, 1000, &declared) >= 1);
    assert_true(s_get(fixture, "/big?chunked=1", 2000, 1000, &chunked) >= 1);
    assert_true(s_get(fixture, "/big", 2000, 0, &whole) >= 1);
    assert_true(s_run_until(fixture->loop, &sequence, 3, 3000));
    assert_int_equal(declared.failure, HTTP_E_TOO_LARGE);
    assert_int_equal(declared.body_size, 0);
    assert_int_equal(chunked.failure, HTTP_E_TOO_LARGE);
    assert_int_equal(chunked.body_size, 0);
    assert_int_equal(whole.failure, HTTP_OK);
    assert_int_equal(whole.body_size, S_BIG_BYTES);
    assert_true(whole.body_terminated);
    for (size_t i = 0; i < S_BIG_BYTES; i++)
        if (whole.body[i] != 'a' + i % 26)
            fail_msg("byte %zu differs", i);
    assert_string_equal(whole.content_type, "text/plain");
    free(declared.body);
    free(chunked.body);
    free(whole.body);
}

static void test_reset_is_a_transport_error_that_may_have_been_sent(void **state)
{
    s_fixture_t *fixture = *state;
    s_result_t result = {0};
    assert_true(s_get(fixture, "/reset", 2000, 0, &result) >= 1);
    assert_true(s_run_until(fixture->loop, &result.calls, 1, 3000));
    assert_int_equal(result.failure, HTTP_E_TRANSPORT);
    assert_true(result.maybe_sent);
    assert_int_equal(result.status, 0);
    assert_true(strlen(result.error) > 0);
    free(result.body);
}

static void test_closed_port_is_a_connect_error_never_sent(void **state)
{
    s_fixture_t *fixture = *state;
    int port;
    int fd = s_listen(&port);
    assert_true(fd >= 0);
    close(fd); /* nobody listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", port);
    s_result_t result = {0};
    http_request_t request = {.method = "POST",
                              .url = url,
                              .timeout_ms = 2000,
                              .body = (const uint8_t *)"x",
                              .body_size = 1};
    assert_true(http_multi_submit(fixture->http, &request, s_on_result, &result) >= 1);
    assert_true(s_run_until(fixture->loop, &result.calls, 1, 3000));
    assert_int_equal(result.failure, HTTP_E_CONNECT);
    assert_false(result.maybe_sent);
    assert_int_equal(result.status, 0);
    assert_true(strlen(result.error) > 0);
    free(result.body);
}

static void test_retry_after_as_seconds_and_as_http_date(void **state)
{
    s_fixture_t *fixture = *state;
    s_result_t seconds = {0}, date = {0}, past = {0}, none = {0};
    atomic_int sequence = 0;
    seconds.sequence = date.sequence = past.sequence = none.sequence = &sequence;
    assert_true(s_get(fixture, "/retry", 2000, 0, &seconds) >= 1);
    assert_true(s_get(fixture, "/date", 2000, 0, &date) >= 1);
    assert_true(s_get(fixture, "/date?past=1", 2000, 0, &past) >= 1);
    assert_true(s_get(fixture, "/ok", 2000, 0, &none) >= 1);
    assert_true(s_run_until(fixture->loop, &sequence, 4, 3000));
    assert_int_equal(seconds.failure, HTTP_OK);
    assert_int_equal(seconds.status, 429);
    assert_int_equal(seconds.retry_after_ms, 2000);
    assert_string_equal((char *)seconds.body, "slow down");
    assert_int_equal(date.status, 503);
    assert_true(date.retry_after_ms >= 28000 && date.retry_after_ms <= 31000);
    assert_int_equal(past.status, 503);
    assert_int_equal(past.retry_after_ms, 0);
    assert_int_equal(none.status, 200);
    assert_int_equal(none.retry_after_ms, -1);
    assert_string_equal(none.content_type, "text/plain");
    assert_string_equal(none.error, "");
    free(seconds.body);
    free(date.body);
    free(past.body);
    free(none.body);
}

static void test_bodies_go_out_whole_without_expect(void **state)
{
    s_fixture_t *fixture = *state;
    size_t big_size = 2 * 1024 * 1024 + 17; /* curl adds Expect: 100-continue past 1 MiB */
    uint8_t *big = malloc(big_size);
    assert_non_null(big);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (uint8_t)(i * 7);
    const char *binary[] = {"Content-Type: application/octet-stream", "X-Trace: 1", NULL};
    http_request_t post = {.method = "POST",
                           .url = s_url(fixture, "/echo"),
                           .headers = binary,
                           .body = big,
                           .body_size = big_size,
                           .timeout_ms = 3000};
    s_result_t posted = {0}, put = {0}, deleted = {0}, empty = {0};
    atomic_int sequence = 0;
    posted.sequence = put.sequence = deleted.sequence = empty.sequence = &sequence;
    assert_true(http_multi_submit(fixture->http, &post, s_on_result, &posted) >= 1);
    http_request_t request = {.method = "PUT",
                              .url = s_url(fixture, "/echo"),
                              .body = (const uint8_t *)"put-body",
                              .body_size = 8,
                              .timeout_ms = 2000};
    assert_true(http_multi_submit(fixture->http, &request, s_on_result, &put) >= 1);
    request =
        (http_request_t){.method = "DELETE", .url = s_url(fixture, "/echo"), .timeout_ms = 2000};
    assert_true(http_multi_submit(fixture->http, &request, s_on_result, &deleted) >= 1);
    request =
        (http_request_t){.method = "POST", .url = s_url(fixture, "/echo"), .timeout_ms = 2000};
    assert_true(http_multi_submit(fixture->http, &request, s_on_result, &empty) >= 1);
    assert_true(s_run_until(fixture->loop, &sequence, 4, 4000));

    assert_int_equal(posted.failure, HTTP_OK);
    assert_int_equal(posted.body_size, big_size);
    assert_memory_equal(posted.body, big, big_size);
    assert_string_equal(posted.content_type,
                        "application/x-echo; method=POST; ct=application/octet-stream");
    assert_string_equal((char *)put.body, "put-body");
    assert_string_equal(put.content_type, "application/x-echo; method=PUT; ct=none");
    assert_int_equal(deleted.body_size, 0);
    assert_string_equal(deleted.content_type, "application/x-echo; method=DELETE; ct=none");
    assert_int_equal(empty.status, 200);
    assert_int_equal(empty.body_size, 0);
    assert_true(empty.body_terminated);
    assert_int_equal(atomic_load(&fixture->server->expects), 0);
    free(big);
    free(posted.body);
    free(put.body);
    free(deleted.body);
    free(empty.body);
}

static void test_cancel_calls_back_before_returning(void **state)
{
    s_fixture_t *fixture = *state;
    /* Cancelled before the loop ran: it never left. */
    s_result_t early = {0};
    uint64_t early_id = s_get(fixture, "/ok", 2000, 0, &early);
    assert_true(early_id >= 1);
    assert_int_equal(http_multi_cancel(fixture->http, early_id), 0);
    assert_int_equal(atomic_load(&early.calls), 1);
    assert_int_equal(early.failure, HTTP_E_CANCELLED);
    assert_false(early.maybe_sent);
    assert_int_equal(http_multi_cancel(fixture->http, early_id), -1);

    /* Cancelled while the server holds it. */
    s_result_t slow = {0}, fast = {0};
    uint64_t slow_id = s_get(fixture, "/slow?ms=3000", 2000, 0, &slow);
    assert_true(slow_id >= 1);
    assert_true(s_get(fixture, "/ok", 2000, 0, &fast) >= 1);
    assert_true(s_run_until(fixture->loop, &fixture->server->requests, 2, 2000));
    assert_int_equal(atomic_load(&slow.calls), 0);
    assert_int_equal(http_multi_cancel(fixture->http, slow_id), 0);
    assert_int_equal(atomic_load(&slow.calls), 1);
    assert_int_equal(slow.failure, HTTP_E_CANCELLED);
    assert_true(slow.maybe_sent);
    assert_int_equal(http_multi_cancel(fixture->http, slow_id), -1);
    assert_int_equal(http_multi_cancel(fixture->http, 987654), -1);
    assert_int_equal(http_multi_cancel(fixture->http, 0), -1);
    assert_true(s_run_until(fixture->loop, &fast.calls, 1, 2000));
    assert_int_equal(fast.failure, HTTP_OK);

    /* Nothing else arrives, and the client still works. */
    s_result_t after = {0};
    assert_true(s_get(fixture, "/ok", 2000, 0, &after) >= 1);
    assert_true(s_run_until(fixture->loop, &after.calls, 1, 2000));
    assert_int_equal(after.failure, HTTP_OK);
    assert_int_equal(atomic_load(&early.calls), 1);
    assert_int_equal(atomic_load(&slow.calls), 1);
    assert_int_equal(http_multi_active(fixture->http), 0);
    free(early.body);
    free(slow.body);
    free(fast.body);
    free(after.body);
}

typedef struct {
    s_fixture_t *fixture;
    uint64_t victim_id;
    s_result_t *victim;
    s_result_t follow_up;
    int victim_calls_during_cancel;
    int cancel_rc;
    bool destroy_refused;
    atomic_int done;
} s_reentry_t;

static void s_on_reentry(const http_response_t *response, void *arg)
{
    s_reentry_t *reentry = arg;
    assert_int_equal(response->failure, HTTP_OK);
    s_fixture_t *fixture = reentry->fixture;
    reentry->cancel_rc = http_multi_cancel(fixture->http, reentry->victim_id);
    reentry->victim_calls_during_cancel = atomic_load(&reentry->victim->calls);
    assert_int_equal(http_multi_cancel(fixture->http, response->id), -1); /* itself */
    http_multi_t *http = fixture->http;
    http_multi_destroy(&http); /* refused from a callback */
    reentry->destroy_refused = http == fixture->http;
    assert_true(s_get(fixture, "/ok", 2000, 0, &reentry->follow_up) >= 1);
    atomic_fetch_add(&reentry->done, 1);
}

static void test_callbacks_may_cancel_and_submit(void **state)
{
    s_fixture_t *fixture = *state;
    s_result_t victim = {0};
    s_reentry_t reentry = {.fixture = fixture, .victim = &victim};
    reentry.victim_id = s_get(fixture, "/slow?ms=3000", 2000, 0, &victim);
    http_request_t request = {.method = "GET", .url = s_url(fixture, "/ok"), .timeout_ms = 2000};
    assert_true(http_multi_submit(fixture->http, &request, s_on_reentry, &reentry) >= 1);
    assert_true(s_run_until(fixture->loop, &reentry.done, 1, 2000));
    assert_int_equal(reentry.cancel_rc, 0);
    assert_int_equal(reentry.victim_calls_during_cancel, 1);
    assert_int_equal(victim.failure, HTTP_E_CANCELLED);
    assert_true(reentry.destroy_refused);
    assert_true(s_run_until(fixture->loop, &reentry.follow_up.calls, 1, 2000));
    assert_int_equal(reentry.follow_up.failure, HTTP_OK);
    assert_string_equal((char *)reentry.follow_up.body, "hello");
    free(victim.body);
    free(reentry.follow_up.body);
}

typedef struct {
    http_multi_t *http;
    atomic_int cancelled;
    int other;
    int sent;
    int resubmitted;
} s_closing_t;

static void s_on_closing(const http_response_t *response, void *arg)
{
    s_closing_t *closing = arg;
    if (response->failure == HTTP_E_CANCELLED)
        atomic_fetch_add(&closing->cancelled, 1);
    else
        closing->other++;
    closing->sent += response->maybe_sent;
    http_request_t request = {.method = "GET", .url = "http://127.0.0.1:1/", .timeout_ms = 10};
    closing->resubmitted += http_multi_submit(closing->http, &request, s_on_closing, arg) != 0;
}

static void test_destroy_cancels_everything_in_flight(void **state)
{
    s_fixture_t *fixture = *state;
    s_closing_t closing = {.http = fixture->http};
    enum { N = S_PER_HOST + 4 }; /* four wait for a connection */
    http_request_t request = {
        .method = "GET", .url = s_url(fixture, "/slow?ms=3000"), .timeout_ms = 3000};
    for (int i = 0; i < N; i++)
        assert_true(http_multi_submit(fixture->http, &request, s_on_closing, &closing) >= 1);
    assert_true(s_run_until(fixture->loop, &fixture->server->requests, S_PER_HOST, 2000));
    assert_int_equal(http_multi_active(fixture->http), N);
    http_multi_destroy(&fixture->http);
    assert_null(fixture->http);
    assert_int_equal(atomic_load(&closing.cancelled), N);
    assert_int_equal(closing.other, 0);
    assert_int_equal(closing.sent, S_PER_HOST); /* the queued ones surely never left */
    assert_int_equal(closing.resubmitted, 0);
}

static void s_on_never(const http_response_t *response, void *arg)
{
    (void)response;
    (void)arg;
    fail_msg("a refused request called back");
}

static void test_submit_refuses_bad_requests(void **state)
{
    s_fixture_t *fixture = *state;
    const char *good = s_url(fixture, "/ok");
    const char *no_colon[] = {"Accept application/json", NULL};
    const char *crlf[] = {"X-A: 1\r\nX-B: 2", NULL};
    const char *space_in_name[] = {"X A: 1", NULL};
    http_request_t bad[] = {
        {.method = "GET", .url = NULL, .timeout_ms = 1000},
        {.method = "GET", .url = "ftp://127.0.0.1/", .timeout_ms = 1000},
        {.method = "GET", .url = "http://127.0.0.1/a\nb", .timeout_ms = 1000},
        {.method = "GET", .url = good, .timeout_ms = 0},
        {.method = "GET", .url = good, .timeout_ms = 1000, .connect_timeout_ms = -1},
        {.method = "BREW", .url = good, .timeout_ms = 1000},
        {.method = NULL, .url = good, .timeout_ms = 1000},
        {.method = "GET",
         .url = good,
         .timeout_ms = 1000,
         .body = (const uint8_t *)"x",
         .body_size = 1},
        {.method = "POST", .url = good, .timeout_ms = 1000, .body_size = 3},
        {.method = "GET", .url = good, .timeout_ms = 1000, .headers = no_colon},
        {.method = "GET", .url = good, .timeout_ms = 1000, .headers = crlf},
        {.method = "GET", .url = good, .timeout_ms = 1000, .headers = space_in_name},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (http_multi_submit(fixture->http, &bad[i], s_on_never, NULL) != 0)
            fail_msg("bad request %zu was accepted", i);
    http_request_t fine = {.method = "GET", .url = good, .timeout_ms = 1000};
    assert_int_equal(http_multi_submit(fixture->http, &fine, NULL, NULL), 0);
    assert_int_equal(http_multi_submit(NULL, &fine, s_on_never, NULL), 0);
    assert_int_equal(http_multi_active(fixture->http), 0);
    assert_null(http_multi_new(fixture->loop, -1));
    assert_null(http_multi_new(NULL, 4));
    http_multi_destroy(NULL);
}

int test_http_multi_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_concurrent_requests_share_few_connections,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_slow_request_times_out_while_fast_ones_complete,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reply_over_the_cap_is_too_large, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reset_is_a_transport_error_that_may_have_been_sent,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_closed_port_is_a_connect_error_never_sent, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_as_seconds_and_as_http_date, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bodies_go_out_whole_without_expect, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_calls_back_before_returning, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_callbacks_may_cancel_and_submit, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_cancels_everything_in_flight, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_submit_refuses_bad_requests, s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("http_multi", tests, NULL, NULL);
}

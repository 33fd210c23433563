/*  jira_client.c - see jira_client.h. A call waits in its tenant's FIFO, runs on http_multi,
    and on a retryable failure sleeps on a zloop timer before going back to the front of that
    FIFO. */
#include "jira_client.h"
#include "../../common/connect_qsh.h"
#include "../../common/jwt.h"
#include "../../common/latency_histogram.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define S_JWT_LIFETIME_S 180

typedef struct s_tenant_queue_t s_tenant_queue_t;

typedef struct {
    jira_client_t *client;
    s_tenant_queue_t *queue;
    jira_tenant_t tenant;       /* copy; secret owned */
    char method[8];
    char *path;                 /* path and query, owned */
    char *body;                 /* serialized JSON, owned, or NULL */
    bool idempotent;
    int64_t deadline_ms;
    jira_done_fn *fn;
    void *arg;
    int attempts;
    bool running;               /* holds one of its tenant's slots */
    uint64_t http_id;
    int timer_id;               /* retry or deferred failure, 0 when none */
    const char *deferred_error; /* set when a deferred failure is due */
    int64_t started_us;
    void *list_handle;          /* in queue->waiting or client->calls */
} s_call_t;

struct s_tenant_queue_t {
    char id[64];
    size_t running;
    zlistx_t *waiting; /* s_call_t *, oldest first */
};

struct jira_client_t {
    worker_t *worker;
    zloop_t *loop;
    http_multi_t *http;
    jira_client_config_t config;
    zhashx_t *tenants;  /* id -> s_tenant_queue_t, owns */
    zlistx_t *calls;    /* every s_call_t alive, owns */
    latency_histogram_t *latency;
    bool closing;       /* destroy is failing what is left: start nothing */
    int stats_timer;    /* refreshes the latency counter once a second */
    uint64_t *calls_made, *retries, *throttled, *errors_4xx, *errors_5xx, *errors_network,
        *ambiguous, *latency_p99_us, *waiting;
};

static void s_tenant_queue_free(void **item)
{
    s_tenant_queue_t *queue = *item;
    if (queue) {
        zlistx_destroy(&queue->waiting);
        free(queue);
        *item = NULL;
    }
}

/* The p99 counter, from the last minute's histogram: once a second, not per call. */
static int s_on_stats_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    jira_client_t *self = arg;
    *self->latency_p99_us = latency_histogram_percentile(self->latency, 99, zclock_mono());
    return 0;
}

jira_client_t *jira_client_new(worker_t *worker, const jira_client_config_t *config)
{
    jira_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->worker = worker;
    self->loop = worker_loop(worker);
    self->config = *config;
    self->http = http_multi_new(self->loop, (long)config->per_tenant_max);
    self->tenants = zhashx_new();
    self->calls = zlistx_new();
    self->latency = latency_histogram_new();
    if (!self->http || !self->tenants || !self->calls || !self->latency) {
        jira_client_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->tenants, s_tenant_queue_free);
    self->calls_made = worker_counter(worker, "jira_calls");
    self->retries = worker_counter(worker, "jira_retries");
    self->throttled = worker_counter(worker, "jira_throttled");
    self->errors_4xx = worker_counter(worker, "jira_errors_4xx");
    self->errors_5xx = worker_counter(worker, "jira_errors_5xx");
    self->errors_network = worker_counter(worker, "jira_errors_network");
    self->ambiguous = worker_counter(worker, "jira_ambiguous");
    self->latency_p99_us = worker_counter(worker, "jira_latency_p99_us");
    self->waiting = worker_counter(worker, "jira_waiting");
    self->stats_timer = zloop_timer(self->loop, 1000, 0, s_on_stats_timer, self);
    if (self->stats_timer < 0) {
        jira_client_destroy(&self);
        return NULL;
    }
    return self;
}

static void s_call_free(s_call_t *call)
{
    if (call->tenant.secret) {
        OPENSSL_cleanse(call->tenant.secret, strlen(call->tenant.secret));
        free(call->tenant.secret);
    }
    free(call->path);
    free(call->body);
    free(call);
}

static void s_pump(jira_client_t *self, s_tenant_queue_t *queue);

/* Answers the caller and forgets the call. */
static void s_finish(s_call_t *call, jira_outcome_t outcome, long status, json_t *body,
                     const char *error)
{
    jira_client_t *self = call->client;
    if (call->timer_id) {
        zloop_timer_end(self->loop, call->timer_id);
        call->timer_id = 0;
    }
    if (call->running) {
        call->running = false;
        call->queue->running--;
    }
    zlistx_detach(self->calls, call->list_handle);
    jira_result_t result = {.outcome = outcome, .status = status, .body = body,
                            .error = error, .attempts = call->attempts};
    call->fn(&result, call->arg);
    s_tenant_queue_t *queue = call->queue;
    s_call_free(call);
    s_pump(self, queue);
}

static int s_on_deferred_failure(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_call_t *call = arg;
    call->timer_id = 0;
    s_finish(call, JIRA_UNAVAILABLE, 0, NULL, call->deferred_error);
    return 0;
}

/* Fails a call from a fresh loop turn (callers never see fn run inside their own call). */
static void s_fail_later(s_call_t *call, const char *error)
{
    call->deferred_error = error;
    call->timer_id = zloop_timer(call->client->loop, 1, 1, s_on_deferred_failure, call);
    if (call->timer_id < 0) {
        call->timer_id = 0;
        s_finish(call, JIRA_UNAVAILABLE, 0, NULL, error);
    }
}

/* "Authorization: ..." for this call into out. Returns 0 or -1. */
static int s_authorization(s_call_t *call, char *out, size_t size)
{
    const jira_tenant_t *tenant = &call->tenant;
    if (!tenant->connect) {
        size_t length = strlen(tenant->secret);
        if (length > 512)
            return -1;
        char encoded[4 * 513 / 3 + 8];
        EVP_EncodeBlock((unsigned char *)encoded, (const unsigned char *)tenant->secret,
                        (int)length);
        snprintf(out, size, "Authorization: Basic %s", encoded);
        return 0;
    }
    /* Connect: qsh over the path relative to the base URL's own path */
    const char *host = strstr(tenant->base_url, "://");
    const char *base_path = host ? strchr(host + 3, '/') : NULL;
    char path[2048];
    snprintf(path, sizeof path, "%s%s", base_path ? base_path : "", call->path);
    char *query = strchr(path, '?');
    if (query)
        *query++ = '\0';
    char qsh[65];
    if (connect_qsh(call->method, path, query, base_path, qsh) != 0)
        return -1;
    int64_t now = zclock_time() / 1000;
    json_t *claims = json_pack("{s:s, s:I, s:I, s:s}", "iss", tenant->app_key, "iat",
                               (json_int_t)now, "exp", (json_int_t)(now + S_JWT_LIFETIME_S),
                               "qsh", qsh);
    char *token = claims ? jwt_sign_hs256(claims, (const uint8_t *)tenant->secret,
                                          strlen(tenant->secret))
                         : NULL;
    json_decref(claims);
    if (!token)
        return -1;
    snprintf(out, size, "Authorization: JWT %s", token);
    free(token);
    return 0;
}

static void s_on_http(const http_response_t *response, void *arg);

/* Sends one attempt of call (it holds a slot). */
static void s_start(s_call_t *call)
{
    jira_client_t *self = call->client;
    int64_t left = call->deadline_ms - zclock_mono();
    if (left <= 0) {
        s_fail_later(call, "deadline passed before Jira answered");
        return;
    }
    char url[2560], authorization[1200];
    snprintf(url, sizeof url, "%s%s", call->tenant.base_url, call->path);
    if (s_authorization(call, authorization, sizeof authorization) != 0) {
        s_fail_later(call, "could not sign the request");
        return;
    }
    const char *headers[] = {"Accept: application/json", authorization,
                             call->body ? "Content-Type: application/json" : NULL, NULL};
    http_request_t request = {
        .method = call->method,
        .url = url,
        .headers = headers,
        .body = (const uint8_t *)call->body,
        .body_size = call->body ? strlen(call->body) : 0,
        .timeout_ms = left < self->config.timeout_ms ? left : self->config.timeout_ms,
    };
    call->attempts++;
    (*self->calls_made)++;
    call->started_us = zclock_usecs();
    call->http_id = http_multi_submit(self->http, &request, s_on_http, call);
    if (!call->http_id)
        s_fail_later(call, "could not start the HTTP request");
}

/* Starts waiting calls while the tenant has free slots. */
static void s_pump(jira_client_t *self, s_tenant_queue_t *queue)
{
    while (!self->closing && queue->running < (size_t)self->config.per_tenant_max &&
           zlistx_size(queue->waiting) > 0) {
        s_call_t *call = zlistx_first(queue->waiting);
        zlistx_detach_cur(queue->waiting);
        (*self->waiting)--;
        call->list_handle = zlistx_add_end(self->calls, call);
        call->running = true;
        queue->running++;
        s_start(call);
    }
}

static int s_on_retry_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_call_t *call = arg;
    jira_client_t *self = call->client;
    call->timer_id = 0;
    zlistx_detach(self->calls, call->list_handle);
    call->list_handle = zlistx_add_start(call->queue->waiting, call); /* it was first in line */
    (*self->waiting)++;
    s_pump(self, call->queue);
    return 0;
}

/* Jittered exponential backoff for the call's next attempt. */
static int64_t s_backoff_ms(const jira_client_t *self, int attempts)
{
    int64_t bound = self->config.retry_base_ms;
    for (int i = 1; i < attempts && bound < self->config.retry_max_ms; i++)
        bound *= 2;
    if (bound > self->config.retry_max_ms)
        bound = self->config.retry_max_ms;
    return bound / 2 + random() % (bound / 2 + 1);
}

/* Tries again after delay_ms, or gives up when that passes the deadline. */
static void s_retry(s_call_t *call, int64_t delay_ms, long status, const char *error)
{
    jira_client_t *self = call->client;
    if (zclock_mono() + delay_ms >= call->deadline_ms) {
        s_finish(call, JIRA_UNAVAILABLE, status, NULL, error);
        return;
    }
    (*self->retries)++;
    call->running = false;
    call->queue->running--;
    call->timer_id = zloop_timer(self->loop, (size_t)(delay_ms < 1 ? 1 : delay_ms), 1,
                                 s_on_retry_timer, call);
    if (call->timer_id < 0) {
        call->timer_id = 0;
        s_finish(call, JIRA_UNAVAILABLE, status, NULL, "could not schedule a retry");
        return;
    }
    s_pump(self, call->queue); /* its slot goes to the next call meanwhile */
}

static void s_on_http(const http_response_t *response, void *arg)
{
    s_call_t *call = arg;
    jira_client_t *self = call->client;
    call->http_id = 0;
    int64_t now = zclock_mono();
    latency_histogram_record(self->latency, (uint64_t)(zclock_usecs() - call->started_us), now);
    if (response->failure == HTTP_E_CANCELLED) {
        s_finish(call, JIRA_UNAVAILABLE, 0, NULL, "cancelled");
        return;
    }
    if (response->failure != HTTP_OK) {
        (*self->errors_network)++;
        if (call->idempotent || !response->maybe_sent) {
            s_retry(call, s_backoff_ms(self, call->attempts), 0, "Jira unreachable");
        } else {
            (*self->ambiguous)++;
            s_finish(call, JIRA_AMBIGUOUS, 0, NULL, "no answer from Jira");
        }
        return;
    }
    long status = response->status;
    if (status == 429) {
        (*self->throttled)++;
        int64_t delay = response->retry_after_ms >= 0 ? response->retry_after_ms
                                                      : s_backoff_ms(self, call->attempts);
        s_retry(call, delay, status, "Jira is throttling (429)");
        return;
    }
    if (status >= 500) {
        (*self->errors_5xx)++;
        if (call->idempotent) {
            s_retry(call, s_backoff_ms(self, call->attempts), status, "Jira failed (5xx)");
        } else {
            (*self->ambiguous)++;
            s_finish(call, JIRA_AMBIGUOUS, status, NULL, "Jira failed (5xx)");
        }
        return;
    }
    json_t *body = response->body_size
                       ? json_loadb((const char *)response->body, response->body_size, 0, NULL)
                       : NULL;
    if (status >= 200 && status < 300)
        s_finish(call, JIRA_OK, status, body, NULL);
    else {
        (*self->errors_4xx)++;
        s_finish(call, JIRA_REFUSED, status, body, "Jira refused the request");
    }
    json_decref(body);
}

int jira_client_call(jira_client_t *self, const jira_tenant_t *tenant, const char *method,
                     const char *path_and_query, json_t *body, bool idempotent,
                     int64_t deadline_ms, jira_done_fn *fn, void *arg)
{
    if (!tenant->secret || !*tenant->base_url || strlen(method) >= 8 || *path_and_query != '/' ||
        strlen(path_and_query) > 2000 || deadline_ms <= zclock_mono())
        return -1;
    s_tenant_queue_t *queue = zhashx_lookup(self->tenants, tenant->id);
    if (!queue) {
        queue = calloc(1, sizeof *queue);
        if (!queue || !(queue->waiting = zlistx_new())) {
            free(queue);
            return -1;
        }
        snprintf(queue->id, sizeof queue->id, "%s", tenant->id);
        zhashx_insert(self->tenants, queue->id, queue);
    }
    if (zlistx_size(queue->waiting) >= (size_t)self->config.queue_max)
        return -1;
    s_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return -1;
    call->client = self;
    call->queue = queue;
    call->tenant = *tenant;
    call->tenant.secret = strdup(tenant->secret);
    call->path = strdup(path_and_query);
    call->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    snprintf(call->method, sizeof call->method, "%s", method);
    call->idempotent = idempotent;
    call->deadline_ms = deadline_ms;
    call->fn = fn;
    call->arg = arg;
    if (!call->tenant.secret || !call->path || (body && !call->body)) {
        s_call_free(call);
        return -1;
    }
    call->list_handle = zlistx_add_end(queue->waiting, call);
    (*self->waiting)++;
    /* Start it from the loop, not from inside this call: its callback may come at once. */
    if (queue->running < (size_t)self->config.per_tenant_max) {
        zlistx_detach(queue->waiting, call->list_handle);
        (*self->waiting)--;
        call->list_handle = zlistx_add_end(self->calls, call);
        call->running = true;
        queue->running++;
        s_start(call);
    }
    return 0;
}

size_t jira_client_pending(const jira_client_t *self)
{
    size_t total = zlistx_size(self->calls);
    for (s_tenant_queue_t *q = zhashx_first(self->tenants); q; q = zhashx_next(self->tenants))
        total += zlistx_size(q->waiting);
    return total;
}

void jira_client_destroy(jira_client_t **self_p)
{
    jira_client_t *self = *self_p;
    if (!self)
        return;
    /* Running calls end through their HTTP callbacks (cancelled); waiting and sleeping ones
       are failed here. */
    self->closing = true;
    if (self->stats_timer > 0)
        zloop_timer_end(self->loop, self->stats_timer);
    http_multi_destroy(&self->http);
    s_call_t *call;
    while (self->calls && (call = zlistx_first(self->calls)))
        s_finish(call, JIRA_UNAVAILABLE, 0, NULL, "shutting down");
    if (self->tenants)
        for (s_tenant_queue_t *q = zhashx_first(self->tenants); q;
             q = zhashx_next(self->tenants))
            while ((call = zlistx_first(q->waiting))) {
                zlistx_detach_cur(q->waiting);
                call->list_handle = zlistx_add_end(self->calls, call);
                s_finish(call, JIRA_UNAVAILABLE, 0, NULL, "shutting down");
            }
    zhashx_destroy(&self->tenants);
    zlistx_destroy(&self->calls);
    latency_histogram_destroy(&self->latency);
    free(self);
    *self_p = NULL;
}

/*  jira_client.h - calls to a tenant's Jira REST API, many at once, on the worker's loop.

    Built on http_multi (libcurl multi on zloop). Each call is signed for its tenant: HTTP basic
    with the tenant's API user and token, or an Atlassian Connect JWT (HS256 with the shared
    secret, iss = our app key, qsh of this very request, valid 3 minutes). Bodies and replies
    are JSON.

    Faults, as Jira documents them: 429 waits for Retry-After (or a jittered backoff) and tries
    again; 5xx, timeouts and network errors are retried with jittered exponential backoff while
    the caller's deadline allows, except that a call which is not idempotent and may have
    reached Jira is handed back as JIRA_AMBIGUOUS (the caller checks whether it took effect
    before trying again: that is how a comment is never written twice). Other 4xx are final.
    Each tenant has at most per_tenant_max calls at Jira; the rest wait in that tenant's FIFO,
    so one tenant's slow Jira does not hold up the others.

    Counters (calls, retries, errors by class, throttled, latency) are worker counters. Nothing
    here logs a body: request and reply bodies may hold customers' messages. */
#ifndef JIRA_CLIENT_H
#define JIRA_CLIENT_H

#include "../../common/http_multi.h"
#include "../../common/worker.h"

#include <jansson.h>

/* A tenant's Jira, as the client needs it to sign calls. */
typedef struct {
    char id[64];
    char base_url[256];   /* no trailing '/' */
    bool connect;         /* Connect JWT; else basic */
    char app_key[64];     /* Connect: our app's key (the JWT's iss) */
    char *secret;         /* Connect: shared secret; basic: "user:token". Owned by the caller */
} jira_tenant_t;

typedef enum {
    JIRA_OK = 0,          /* 2xx */
    JIRA_REFUSED,         /* a final 4xx: status says which */
    JIRA_AMBIGUOUS,       /* not idempotent, may have taken effect, not retried */
    JIRA_UNAVAILABLE,     /* retries ran out before the deadline (429, 5xx, network) */
} jira_outcome_t;

typedef struct {
    jira_outcome_t outcome;
    long status;          /* HTTP status of the last answer, 0 when none */
    json_t *body;         /* the reply's JSON (borrowed for the callback), or NULL */
    const char *error;    /* short reason for logs and clients (no body text) */
    int attempts;
} jira_result_t;

typedef void(jira_done_fn)(const jira_result_t *result, void *arg);

typedef struct {
    int64_t timeout_ms;       /* one attempt */
    int64_t retry_base_ms;    /* first backoff bound; doubles with jitter */
    int64_t retry_max_ms;     /* backoff cap */
    int64_t per_tenant_max;   /* calls at one tenant's Jira at once */
    int64_t queue_max;        /* calls waiting per tenant; more are refused at once */
} jira_client_config_t;

typedef struct jira_client_t jira_client_t;

/* Returns a client on worker's loop (borrowed), or NULL. */
jira_client_t *jira_client_new(worker_t *worker, const jira_client_config_t *config);

/* Cancels every call (their callbacks run with JIRA_UNAVAILABLE) and frees the client. */
void jira_client_destroy(jira_client_t **self_p);

/* Calls method path_and_query (e.g. "/rest/api/3/issue/SUP-1/comment?expand=properties") on
   tenant's Jira with body (borrowed; NULL for none). deadline_ms is a zclock_mono() time.
   fn is called exactly once, never from inside this function. tenant is copied. Returns 0,
   or -1 when refused at once (bad arguments, queue full), and then fn is not called. */
int jira_client_call(jira_client_t *self, const jira_tenant_t *tenant, const char *method,
                     const char *path_and_query, json_t *body, bool idempotent,
                     int64_t deadline_ms, jira_done_fn *fn, void *arg);

/* Calls not answered yet. */
size_t jira_client_pending(const jira_client_t *self);

#endif

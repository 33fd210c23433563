/*  jira_service.c - see jira_service.h: the answers every handler shares. */
#include "jira_service.h"
#include "../../common/plog.h"

#include <stdio.h>
#include <string.h>

#define S_DEADLINE_MARGIN_MS 200

void jira_service_bad_request(jira_service_t *self, worker_request_t **request,
                              const char *what, const char *reason)
{
    char message[300];
    snprintf(message, sizeof message, "%s: %s", what, reason);
    (*self->bad_requests)++;
    worker_reply_error(self->worker, request, "bad_request", message);
}

void jira_service_jira_failed(jira_service_t *self, worker_request_t **request,
                              const char *what, const jira_result_t *result)
{
    const char *code = "jira_unavailable";
    if (result->outcome == JIRA_REFUSED)
        code = result->status == 404                            ? "not_found"
               : result->status == 401 || result->status == 403 ? "jira_auth"
                                                                : "jira_refused";
    char message[300];
    if (result->status)
        snprintf(message, sizeof message, "%s: %s (HTTP %ld after %d attempts)", what,
                 result->error ? result->error : "failed", result->status, result->attempts);
    else
        snprintf(message, sizeof message, "%s: %s (after %d attempts)", what,
                 result->error ? result->error : "failed", result->attempts);
    (*self->jira_failures)++;
    plog_warn("jira_call_failed", "request=%s code=%s status=%ld attempts=%d", what, code,
              result->status, result->attempts);
    worker_reply_error(self->worker, request, code, message);
}

int jira_service_call(jira_service_t *self, worker_request_t **request, const char *what,
                      const char *tenant, const char *method, const char *path, json_t *body,
                      bool idempotent, jira_done_fn *fn, void *arg)
{
    const char *code;
    char why[200];
    const jira_tenant_t *found = jira_tenants_get(self->tenants, tenant, &code, why, sizeof why);
    if (!found) {
        worker_reply_error(self->worker, request, code, why);
        return -1;
    }
    if (jira_client_call(self->client, found, method, path, body, idempotent,
                         jira_service_deadline(*request), fn, arg) != 0) {
        jira_result_t refused = {.outcome = JIRA_UNAVAILABLE,
                                 .error = "too many calls waiting for this tenant's Jira"};
        jira_service_jira_failed(self, request, what, &refused);
        return -1;
    }
    return 0;
}

void jira_service_undecodable(jira_service_t *self, worker_request_t **request,
                              const char *what, const proto_decode_error_t *why)
{
    char reason[160];
    snprintf(reason, sizeof reason, "field '%s' %s", why->field, why->reason);
    jira_service_bad_request(self, request, what, reason);
}

int64_t jira_service_deadline(const worker_request_t *request)
{
    int64_t deadline = worker_request_deadline_ms(request) - S_DEADLINE_MARGIN_MS;
    int64_t floor = zclock_mono() + 50;
    return deadline > floor ? deadline : floor;
}

int jira_service_escape(const char *text, size_t length, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (n + (plain ? 1 : 3) >= size)
            return -1;
        if (plain)
            out[n++] = (char)c;
        else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return 0;
}

/*  jira_service.h - what the jira worker's handlers share: the worker, the Jira client, tenant
    lookups, records, configuration and counters. One per process, owned by main.c. */
#ifndef JIRA_SERVICE_H
#define JIRA_SERVICE_H

#include "jira_client.h"
#include "jira_config.h"
#include "jira_records.h"
#include "jira_tenants.h"

#include "../../common/worker.h"

typedef struct {
    const jira_config_t *config;
    worker_t *worker;
    jira_client_t *client;
    http_multi_t *http;            /* calls that are not to a tenant's Jira (install keys) */
    zhashx_t *install_keys;        /* kid -> PEM public key (owned strings) */
    zhashx_t *visitor_budgets;     /* tenant -> jira_session's token bucket for new visitors */
    tenant_store_t *tenants_store; /* writes of installs and uninstalls */
    jira_tenants_t *tenants;
    jira_records_t *records;
    uint64_t *messages_written, *duplicates, *lookups, *conversations_started, *identities,
        *bad_requests, *store_errors, *jira_failures;
} jira_service_t;

/* Answers request with ERROR bad_request "<what>: <reason>" and counts it. */
void jira_service_bad_request(jira_service_t *self, worker_request_t **request,
                              const char *what, const char *reason);

/* Answers a failed Jira call with the matching error (not_found, jira_auth, jira_refused,
   jira_unavailable) and counts it. what names the operation for the message. */
void jira_service_jira_failed(jira_service_t *self, worker_request_t **request,
                              const char *what, const jira_result_t *result);

/* Calls tenant's Jira for request (see jira_client_call; the deadline is request's). Returns
   0 when the call is out (fn will run), or -1 when it could not be made: the request is then
   already answered (the tenant is unknown or unusable, or too many calls wait for its Jira)
   and *request is NULL; the caller only frees what it holds. */
int jira_service_call(jira_service_t *self, worker_request_t **request, const char *what,
                      const char *tenant, const char *method, const char *path, json_t *body,
                      bool idempotent, jira_done_fn *fn, void *arg);

/* Answers request with ERROR bad_request for a payload that did not decode. */
void jira_service_undecodable(jira_service_t *self, worker_request_t **request,
                              const char *what, const proto_decode_error_t *why);

/* The deadline to give Jira calls for request: a little before the broker's, so that the
   answer still reaches the client. */
int64_t jira_service_deadline(const worker_request_t *request);

/* Percent-encodes text (RFC 3986 unreserved kept) into out; returns 0, or -1 if too long. */
int jira_service_escape(const char *text, size_t length, char *out, size_t size);

/* Resolves a verified e-mail to the tenant's customer account (creating the customer in Jira
   when needed) and answers request, which it takes: with jira_identity_reply, or with
   session_identity (kind customer, display_name) when session is set; session_token (copied,
   may be NULL) rides in that session_identity (an anonymous visitor's token to come back
   with). */
void jira_identity_resolve(jira_service_t *svc, worker_request_t *request, const char *tenant,
                           const char *email, size_t email_length, const char *display_name,
                           size_t display_name_length, bool session, const char *session_token);

/* True when text looks like an e-mail address (one '@', printable ASCII, <= 254 bytes). */
bool jira_identity_email_ok(const char *text, size_t length);

/* Registers the handlers (jira_conversations.c, jira_identity.c, jira_session.c). 0 or -1. */
int jira_conversations_register(jira_service_t *self);
int jira_identity_register(jira_service_t *self);
int jira_inbound_register(jira_service_t *self);
int jira_session_register(jira_service_t *self);

#endif

/*  jira_session.c - session.authenticate: who is behind a websocket. The gateway passes the
    token a client sent in its hello; the secrets that verify it live here, with the tenants.

    customer: an HS256 JWT the customer's own website signed with the Jira project's secret
      key (the project's chat configuration), with claims email, displayName, iat and a short
      exp (at most S_CUSTOMER_LIFETIME_S after iat); verified in constant time (jwt.h), times
      checked with S_LEEWAY_S of clock skew; then the e-mail is resolved to the tenant's
      customer account (jira_identity_resolve). Without a token, when the project allows
      anonymous chat: a new visitor (s_visitor), given a token to come back with.
    agent: an HS256 JWT signed with the tenant's Connect shared secret, iss = the tenant,
      sub = the agent's Jira account id, exp required; the agent must be configured for the
      tenant (parleyctl agent set), and the answer lists the projects they serve.

    Every refusal is ERROR unauthorized with the reason (never the token). */
#include "../../common/jwt.h"
#include "../../common/plog.h"
#include "jira_service.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_LEEWAY_S 60
#define S_CUSTOMER_LIFETIME_S 3600

static void s_refuse(jira_service_t *svc, worker_request_t **request, const char *kind,
                     const char *why)
{
    char message[300];
    snprintf(message, sizeof message, "%s token refused: %s", kind, why);
    plog_info("session_refused", "kind=%s reason=\"%s\"", kind, why);
    worker_reply_error(svc->worker, request, "unauthorized", message);
}

/* A tenant's budget of new visitors: a token bucket refilled at visitors_per_min. */
typedef struct {
    double tokens;
    int64_t refilled_ms;
} s_budget_t;

/* True when the tenant may make one more new visitor now (and takes it from its budget).
   Every new visitor is a customer created in the tenant's Jira: without a bound, a script
   opening sockets would fill it. This function can't fail: out of memory, it says yes. */
static bool s_visitor_allowed(jira_service_t *svc, const char *tenant)
{
    double per_min = (double)svc->config->visitors_per_min;
    int64_t now = zclock_mono();
    s_budget_t *budget = zhashx_lookup(svc->visitor_budgets, tenant);
    if (!budget && (budget = malloc(sizeof *budget))) {
        *budget = (s_budget_t){.tokens = per_min, .refilled_ms = now};
        zhashx_insert(svc->visitor_budgets, tenant, budget);
    }
    if (!budget)
        return true;
    budget->tokens += (double)(now - budget->refilled_ms) * per_min / 60000.0;
    if (budget->tokens > per_min)
        budget->tokens = per_min;
    budget->refilled_ms = now;
    if (budget->tokens < 1)
        return false;
    budget->tokens -= 1;
    return true;
}

/* A customer without a token: when the project allows anonymous chat, a new visitor, who
   becomes a Jira customer "Visitor XXXX" with an address under the reserved .invalid domain
   (RFC 2606: no mail can go there), and gets a token signed with the project's secret key
   (when it has one) to come back as the same visitor within the hour. Takes request; clears
   project. */
static void s_visitor(jira_service_t *svc, worker_request_t *request,
                      const proto_session_authenticate_t *ask, tenant_project_t *project)
{
    if (!project->allow_anonymous) {
        tenant_project_clear(project);
        s_refuse(svc, &request, "customer", "a token is needed: this project has no anonymous chat");
        return;
    }
    if (!s_visitor_allowed(svc, ask->tenant)) {
        tenant_project_clear(project);
        plog_warn("visitors_rate_limited", "tenant=%s", ask->tenant);
        worker_reply_error(svc->worker, &request, "rate_limited",
                           "too many new visitors right now; retry in a minute");
        return;
    }
    uint8_t id[8];
    char hex[2 * sizeof id + 1], email[128], name[32];
    if (RAND_bytes(id, sizeof id) != 1) {
        tenant_project_clear(project);
        worker_reply_error(svc->worker, &request, "internal", "no randomness");
        return;
    }
    for (size_t i = 0; i < sizeof id; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(email, sizeof email, "visitor-%s@visitors.parley.invalid", hex);
    snprintf(name, sizeof name, "Visitor %.4s", hex);
    char *visitor_token = NULL;
    if (project->secret_key) {
        json_int_t now = (json_int_t)time(NULL);
        json_t *claims = json_pack("{s:s, s:s, s:I, s:I, s:b}", "email", email, "displayName",
                                   name, "iat", now, "exp", now + S_CUSTOMER_LIFETIME_S,
                                   "visitor", 1);
        if (claims)
            visitor_token = jwt_sign_hs256(claims, (const uint8_t *)project->secret_key,
                                           strlen(project->secret_key));
        json_decref(claims);
    }
    tenant_project_clear(project);
    plog_info("session_visitor", "tenant=%s", ask->tenant);
    jira_identity_resolve(svc, request, ask->tenant, email, strlen(email), name, strlen(name),
                          true, visitor_token);
    free(visitor_token);
}

static void s_customer(jira_service_t *svc, worker_request_t *request,
                       const proto_session_authenticate_t *ask, const char *token)
{
    if (!ask->has_project) {
        jira_service_bad_request(svc, &request, "session.authenticate",
                                 "a customer session needs the project");
        return;
    }
    tenant_project_t project;
    dynamo_error_t error = {0};
    int rc = tenant_store_get_project(svc->tenants_store, ask->tenant, ask->project, &project,
                                      &error);
    if (rc != 0) {
        if (rc == 1 || rc == DYNAMO_E_NOT_FOUND)
            s_refuse(svc, &request, "customer", "no chat configuration for this project");
        else
            worker_reply_error(svc->worker, &request, "degraded",
                               "configuration unavailable; retry shortly");
        return;
    }
    if (!token) {
        s_visitor(svc, request, ask, &project);
        return;
    }
    char why[200];
    json_t *claims = NULL;
    int verified = project.secret_key
                       ? jwt_verify_hs256(token, (const uint8_t *)project.secret_key,
                                          strlen(project.secret_key), &claims, why, sizeof why)
                       : -1;
    if (!project.secret_key)
        snprintf(why, sizeof why, "the project has no secret key");
    tenant_project_clear(&project);
    if (verified != 0) {
        s_refuse(svc, &request, "customer", why);
        return;
    }
    const char *email = json_string_value(json_object_get(claims, "email"));
    const char *name = json_string_value(json_object_get(claims, "displayName"));
    json_int_t iat = json_integer_value(json_object_get(claims, "iat"));
    json_int_t exp = json_integer_value(json_object_get(claims, "exp"));
    const char *problem =
        jwt_check_time(claims, time(NULL), S_LEEWAY_S, true, why, sizeof why) != 0 ? why
        : !json_is_integer(json_object_get(claims, "iat"))                       ? "iat missing"
        : exp - iat > S_CUSTOMER_LIFETIME_S ? "exp is more than an hour after iat"
        : !email || !jira_identity_email_ok(email, strlen(email)) ? "email missing or invalid"
        : name && strlen(name) > 255                              ? "displayName too long"
                                                                  : NULL;
    if (problem) {
        json_decref(claims);
        s_refuse(svc, &request, "customer", problem);
        return;
    }
    jira_identity_resolve(svc, request, ask->tenant, email, strlen(email), name,
                          name ? strlen(name) : 0, true, NULL);
    json_decref(claims);
}

static void s_agent(jira_service_t *svc, worker_request_t *request,
                    const proto_session_authenticate_t *ask, const char *token)
{
    const char *code;
    char why[200];
    const jira_tenant_t *tenant = jira_tenants_get(svc->tenants, ask->tenant, &code, why,
                                                   sizeof why);
    if (!tenant) {
        worker_reply_error(svc->worker, &request, code, why);
        return;
    }
    if (!tenant->connect) {
        s_refuse(svc, &request, "agent", "agent tokens need a Connect tenant's shared secret");
        return;
    }
    json_t *claims = NULL;
    if (jwt_verify_hs256(token, (const uint8_t *)tenant->secret, strlen(tenant->secret), &claims,
                         why, sizeof why) != 0) {
        s_refuse(svc, &request, "agent", why);
        return;
    }
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *problem =
        jwt_check_time(claims, time(NULL), S_LEEWAY_S, true, why, sizeof why) != 0 ? why
        : !iss || strcmp(iss, ask->tenant) != 0                                  ? "iss is not the tenant"
        : !sub || !proto_name_valid(sub, strlen(sub)) ? "sub is not an account id"
                                                      : NULL;
    char account[PROTO_NAME_MAX + 1] = "";
    if (!problem)
        snprintf(account, sizeof account, "%s", sub);
    json_decref(claims);
    if (problem) {
        s_refuse(svc, &request, "agent", problem);
        return;
    }
    tenant_agent_t agent;
    dynamo_error_t error = {0};
    int rc = tenant_store_get_agent(svc->tenants_store, ask->tenant, account, &agent, &error);
    if (rc != 0) {
        if (rc == 1 || rc == DYNAMO_E_NOT_FOUND)
            s_refuse(svc, &request, "agent", "not an agent of this tenant");
        else
            worker_reply_error(svc->worker, &request, "degraded",
                               "configuration unavailable; retry shortly");
        return;
    }
    proto_session_identity_t identity = {.has_projects = true};
    proto_name_set(identity.kind, "agent");
    proto_name_set(identity.account, account);
    for (uint32_t i = 0; i < agent.project_count && i < PROTO_PROJECTS_MAX; i++)
        proto_name_set(identity.projects[identity.projects_count++], agent.projects[i]);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_session_identity_encode(&identity, &encoded) == 0)
        worker_reply(svc->worker, &request, encoded.data, encoded.size);
    else
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
    proto_buffer_release(&encoded);
}

static void s_on_authenticate(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    jira_service_t *svc = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_session_authenticate_t ask;
    proto_decode_error_t why;
    if (proto_session_authenticate_decode(&ask, payload, size, &why) != 0) {
        jira_service_undecodable(svc, &request, "session.authenticate", &why);
        return;
    }
    char token[JWT_MAX_TOKEN + 1];
    snprintf(token, sizeof token, "%.*s", (int)ask.token_len, ask.token);
    if (strchr(ask.tenant, '|') || ask.token_len > JWT_MAX_TOKEN)
        jira_service_bad_request(svc, &request, "session.authenticate", "bad tenant or token");
    else if (strcmp(ask.kind, "customer") == 0)
        s_customer(svc, request, &ask, ask.has_token ? token : NULL);
    else if (strcmp(ask.kind, "agent") == 0 && ask.has_token)
        s_agent(svc, request, &ask, token);
    else if (strcmp(ask.kind, "agent") == 0)
        s_refuse(svc, &request, "agent", "a token is needed");
    else
        jira_service_bad_request(svc, &request, "session.authenticate",
                                 "kind must be customer or agent");
    OPENSSL_cleanse(token, sizeof token);
}

int jira_session_register(jira_service_t *self)
{
    return worker_on(self->worker, "session.authenticate", s_on_authenticate, self);
}

/*  jira_inbound.c - jira.inbound: HTTP calls Jira made to the gateway, verified here, where
    the tenants' secrets are.

    route "installed" / "uninstalled": Atlassian Connect lifecycle callbacks. Signed the way
    Connect signs them today: an RS256 JWT whose header names a key id (kid) served by the
    install-keys service (PARLEY_CONNECT_INSTALL_KEYS_URL/<kid>, fetched once and cached),
    with aud = our app's base URL, iss = the installing clientKey, and the qsh of the very
    request. Installed stores the tenant (clientKey, base URL, shared secret sealed at rest);
    uninstalled marks it, so its calls and webhooks are refused from then on.

    route "webhook": a Jira webhook (comment_created), signed with an HS256 Connect JWT under
    the tenant's shared secret (iss = clientKey, qsh of the request). A comment Parley wrote is
    ignored; any other becomes one conversation.message event on conv.<tenant>.<issue>, once
    (Jira may deliver a webhook more than once). The comment is read back from Jira (with its
    properties), so the event carries what Jira holds, not what the webhook claimed. */
#define _GNU_SOURCE /* strptime */
#include "../../common/adf.h"
#include "../../common/connect_qsh.h"
#include "../../common/jwt.h"
#include "../../common/plog.h"
#include "jira_service.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_LEEWAY_S 60
#define S_KEYS_MAX 64

typedef struct {
    jira_service_t *svc;
    worker_request_t *request;
    proto_jira_inbound_t in;
    char method[17];
    char token[JWT_MAX_TOKEN + 1];
    char path[2049];
    char query[4097];
    char kid[129];
    char tenant[PROTO_NAME_MAX + 1];
    char issue[PROTO_NAME_MAX + 1];
    char comment[PROTO_NAME_MAX + 1];
} s_inbound_t;

static void s_refuse(s_inbound_t *ctx, const char *code, const char *why)
{
    plog_warn("inbound_refused", "route=%s code=%s reason=\"%s\"", ctx->in.route, code, why);
    (*ctx->svc->bad_requests)++;
    worker_reply_error(ctx->svc->worker, &ctx->request, code, why);
    free(ctx);
}

static void s_done(s_inbound_t *ctx, const char *outcome, const char *tenant)
{
    proto_jira_inbound_done_t done = {.has_tenant = tenant != NULL};
    proto_name_set(done.outcome, outcome);
    if (tenant)
        proto_name_set(done.tenant, tenant);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_jira_inbound_done_encode(&done, &encoded) == 0)
        worker_reply(ctx->svc->worker, &ctx->request, encoded.data, encoded.size);
    else
        worker_reply_error(ctx->svc->worker, &ctx->request, "internal", "out of memory");
    proto_buffer_release(&encoded);
    free(ctx);
}

/* Checks the qsh claim against this request, relative to our app's base URL. */
static bool s_qsh_ok(s_inbound_t *ctx, json_t *claims)
{
    const char *host = strstr(ctx->svc->config->app_base_url, "://");
    const char *base_path = host ? strchr(host + 3, '/') : NULL;
    char qsh[CONNECT_QSH_HEX];
    const char *claimed = json_string_value(json_object_get(claims, "qsh"));
    return claimed &&
           connect_qsh(ctx->method, ctx->path, ctx->query, base_path, qsh) == 0 &&
           strcmp(qsh, claimed) == 0;
}

/* True when claims' aud (a string or an array of strings) names our app's base URL. */
static bool s_audience_ok(s_inbound_t *ctx, json_t *claims)
{
    const char *ours = ctx->svc->config->app_base_url;
    json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), ours) == 0;
    size_t i;
    json_t *value;
    json_array_foreach(aud, i, value) if (json_is_string(value) &&
                                          strcmp(json_string_value(value), ours) == 0) return true;
    return false;
}

/* --- lifecycle ---------------------------------------------------------------------------- */

static void s_lifecycle_verified(s_inbound_t *ctx, const char *pem)
{
    jira_service_t *svc = ctx->svc;
    char why[200];
    json_t *claims = NULL;
    if (jwt_verify_rs256(ctx->token, pem, &claims, why, sizeof why) != 0) {
        s_refuse(ctx, "unauthorized", why);
        return;
    }
    json_t *body = json_loadb((const char *)ctx->in.body, ctx->in.body_len, JSON_REJECT_DUPLICATES,
                              NULL);
    const char *client_key = json_string_value(json_object_get(body, "clientKey"));
    const char *key = json_string_value(json_object_get(body, "key"));
    const char *base_url = json_string_value(json_object_get(body, "baseUrl"));
    const char *secret = json_string_value(json_object_get(body, "sharedSecret"));
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    bool installed = strcmp(ctx->in.route, "installed") == 0;
    const char *problem =
        jwt_check_time(claims, time(NULL), S_LEEWAY_S, true, why, sizeof why) != 0 ? why
        : !s_audience_ok(ctx, claims) ? "aud is not this app's base URL"
        : !s_qsh_ok(ctx, claims)      ? "qsh does not match this request"
        : !client_key || !iss || strcmp(client_key, iss) != 0 ? "iss is not the body's clientKey"
        : !proto_name_valid(client_key, strlen(client_key)) || strchr(client_key, '|')
            ? "clientKey unusable as a tenant id"
        : !key || strcmp(key, svc->config->app_key) != 0 ? "the body is for another app"
        : installed && (!secret || strlen(secret) < 32) ? "sharedSecret missing or short"
        : installed && (!base_url || (strncmp(base_url, "https://", 8) != 0 &&
                                      !(svc->config->allow_http == 1 &&
                                        strncmp(base_url, "http://", 7) == 0)))
            ? "baseUrl must be https"
        : installed && strlen(base_url) > TENANT_URL_MAX ? "baseUrl too long"
            : NULL;
    if (problem) {
        json_decref(body);
        json_decref(claims);
        s_refuse(ctx, "unauthorized", problem);
        return;
    }
    snprintf(ctx->tenant, sizeof ctx->tenant, "%s", client_key); /* body is freed below */
    tenant_t tenant;
    dynamo_error_t error = {0};
    int rc = tenant_store_get_tenant(svc->tenants_store, client_key, &tenant, &error);
    if (rc == 1 || (rc != 0 && installed)) {
        memset(&tenant, 0, sizeof tenant);
        snprintf(tenant.id, sizeof tenant.id, "%s", client_key);
    } else if (rc != 0) {
        json_decref(body);
        json_decref(claims);
        (*svc->store_errors)++;
        worker_reply_error(svc->worker, &ctx->request, "degraded",
                           "tenant store unavailable; retry shortly");
        free(ctx);
        return;
    }
    if (installed) {
        tenant_clear(&tenant);
        snprintf(tenant.base_url, sizeof tenant.base_url, "%s", base_url);
        snprintf(tenant.auth, sizeof tenant.auth, "connect");
        snprintf(tenant.client_key, sizeof tenant.client_key, "%s", client_key);
        tenant.shared_secret = strdup(secret);
        tenant.installed_at_ms = zclock_time();
        tenant.uninstalled_at_ms = 0;
    } else
        tenant.uninstalled_at_ms = zclock_time();
    rc = tenant.uninstalled_at_ms || tenant.shared_secret
             ? tenant_store_put_tenant(svc->tenants_store, &tenant, &error)
             : DYNAMO_E_OTHER;
    tenant_clear(&tenant);
    json_decref(body);
    json_decref(claims);
    if (rc != 0) {
        (*svc->store_errors)++;
        worker_reply_error(svc->worker, &ctx->request, "degraded",
                           "could not store the tenant; retry shortly");
        free(ctx);
        return;
    }
    jira_tenants_forget(svc->tenants, ctx->tenant);
    plog_info(installed ? "tenant_installed" : "tenant_uninstalled", "tenant=%s", ctx->tenant);
    s_done(ctx, installed ? "installed" : "uninstalled", ctx->tenant);
}

static void s_on_install_key(const http_response_t *response, void *arg)
{
    s_inbound_t *ctx = arg;
    zhashx_t *keys = ctx->svc->install_keys;
    if (response->failure != HTTP_OK || response->status != 200 || response->body_size > 16384 ||
        !strstr((const char *)response->body, "-----BEGIN PUBLIC KEY-----")) {
        plog_warn("install_key_fetch_failed", "kid=%s status=%ld", ctx->kid, response->status);
        worker_reply_error(ctx->svc->worker, &ctx->request, "unavailable",
                           "could not fetch the Connect install key");
        free(ctx);
        return;
    }
    char kid[sizeof ctx->kid];
    snprintf(kid, sizeof kid, "%s", ctx->kid);
    char *pem = strndup((const char *)response->body, response->body_size);
    s_lifecycle_verified(ctx, pem ? pem : ""); /* answers and frees ctx */
    if (pem && zhashx_size(keys) < S_KEYS_MAX && !zhashx_lookup(keys, kid))
        zhashx_insert(keys, kid, pem); /* the keys service's keys do not change */
    else
        free(pem);
}

static void s_lifecycle(s_inbound_t *ctx)
{
    json_t *header = NULL;
    char why[200];
    if (jwt_decode(ctx->token, &header, NULL, why, sizeof why) != 0) {
        s_refuse(ctx, "unauthorized", why);
        return;
    }
    const char *kid = json_string_value(json_object_get(header, "kid"));
    bool kid_ok = kid && *kid && strlen(kid) < sizeof ctx->kid;
    for (const char *c = kid; kid_ok && *c; c++)
        kid_ok = isalnum((unsigned char)*c) || *c == '-' || *c == '_';
    if (kid_ok)
        snprintf(ctx->kid, sizeof ctx->kid, "%s", kid);
    json_decref(header);
    if (!kid_ok) {
        s_refuse(ctx, "unauthorized", "lifecycle JWT without a usable kid");
        return;
    }
    const char *pem = zhashx_lookup(ctx->svc->install_keys, ctx->kid);
    if (pem) {
        s_lifecycle_verified(ctx, pem);
        return;
    }
    char url[512];
    snprintf(url, sizeof url, "%s/%s", ctx->svc->config->install_keys_url, ctx->kid);
    http_request_t request = {.method = "GET", .url = url, .timeout_ms = 5000,
                              .reply_max_bytes = 16384};
    if (!http_multi_submit(ctx->svc->http, &request, s_on_install_key, ctx)) {
        worker_reply_error(ctx->svc->worker, &ctx->request, "internal",
                           "could not fetch the install key");
        free(ctx);
    }
}

/* --- webhook ------------------------------------------------------------------------------ */

static void s_on_comment(const jira_result_t *result, void *arg)
{
    s_inbound_t *ctx = arg;
    jira_service_t *svc = ctx->svc;
    if (result->outcome != JIRA_OK) {
        jira_service_jira_failed(svc, &ctx->request, "jira.inbound webhook", result);
        free(ctx);
        return;
    }
    size_t i;
    json_t *property;
    json_array_foreach(json_object_get(result->body, "properties"), i, property)
    {
        const char *key = json_string_value(json_object_get(property, "key"));
        if (key && strcmp(key, "parley") == 0) {
            s_done(ctx, "own_comment", ctx->tenant);
            return;
        }
    }
    bool first = true;
    if (jira_records_comment_first_seen(svc->records, ctx->tenant, ctx->comment, &first) != 0) {
        (*svc->store_errors)++;
        worker_reply_error(svc->worker, &ctx->request, "degraded",
                           "Redis unavailable; Jira will deliver the webhook again");
        free(ctx);
        return;
    }
    if (!first) {
        s_done(ctx, "duplicate", ctx->tenant);
        return;
    }
    json_t *author = json_object_get(result->body, "author");
    const char *account = json_string_value(json_object_get(author, "accountId"));
    const char *name = json_string_value(json_object_get(author, "displayName"));
    char *text = adf_to_text(json_object_get(result->body, "body"), PROTO_MESSAGE_TEXT_MAX);
    struct tm created_tm = {0};
    const char *created = json_string_value(json_object_get(result->body, "created"));
    int64_t created_ms = created && strptime(created, "%Y-%m-%dT%H:%M:%S", &created_tm)
                             ? (int64_t)timegm(&created_tm) * 1000
                             : zclock_time();
    proto_conversation_message_event_t event = {
        .text = text ? text : "",
        .text_len = text ? (uint32_t)strlen(text) : 0,
        .has_author_name = name != NULL,
        .author_name = name,
        .author_name_len = name ? (uint32_t)strnlen(name, 255) : 0,
        .created_ms = (uint64_t)created_ms,
    };
    proto_name_set(event.issue, ctx->issue);
    event.has_comment = true;
    proto_name_set(event.comment, ctx->comment);
    proto_name_set(event.author_kind, "agent");
    proto_name_set(event.author, account && proto_name_valid(account, strlen(account))
                                     ? account
                                     : "unknown");
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    char topic[2 * PROTO_NAME_MAX + 8];
    snprintf(topic, sizeof topic, "conv.%s.%s", ctx->tenant, ctx->issue);
    if (proto_conversation_message_event_encode(&event, &encoded) == 0)
        worker_publish(svc->worker, topic, "conversation.message", encoded.data, encoded.size);
    proto_buffer_release(&encoded);
    free(text);
    s_done(ctx, "published", ctx->tenant);
}

static void s_webhook(s_inbound_t *ctx)
{
    jira_service_t *svc = ctx->svc;
    json_t *claims = NULL;
    char why[200];
    if (jwt_decode(ctx->token, NULL, &claims, why, sizeof why) != 0) {
        s_refuse(ctx, "unauthorized", why);
        return;
    }
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || !proto_name_valid(iss, strlen(iss)) || strchr(iss, '|')) {
        json_decref(claims);
        s_refuse(ctx, "unauthorized", "webhook JWT without a usable iss");
        return;
    }
    snprintf(ctx->tenant, sizeof ctx->tenant, "%s", iss);
    json_decref(claims);
    const char *code;
    const jira_tenant_t *tenant = jira_tenants_get(svc->tenants, ctx->tenant, &code, why,
                                                   sizeof why);
    if (!tenant || !tenant->connect) {
        s_refuse(ctx, "unauthorized", tenant ? "tenant is not a Connect installation" : why);
        return;
    }
    if (jwt_verify_hs256(ctx->token, (const uint8_t *)tenant->secret, strlen(tenant->secret),
                         &claims, why, sizeof why) != 0) {
        s_refuse(ctx, "unauthorized", why);
        return;
    }
    const char *problem = jwt_check_time(claims, time(NULL), S_LEEWAY_S, true, why,
                                         sizeof why) != 0
                              ? why
                          : !s_qsh_ok(ctx, claims) ? "qsh does not match this request"
                                                   : NULL;
    json_decref(claims);
    if (problem) {
        s_refuse(ctx, "unauthorized", problem);
        return;
    }
    json_t *body = json_loadb((const char *)ctx->in.body, ctx->in.body_len, JSON_REJECT_DUPLICATES,
                              NULL);
    const char *event = json_string_value(json_object_get(body, "webhookEvent"));
    const char *issue = json_string_value(json_object_get(json_object_get(body, "issue"), "key"));
    const char *comment =
        json_string_value(json_object_get(json_object_get(body, "comment"), "id"));
    bool usable = event && strcmp(event, "comment_created") == 0 && issue && comment &&
                  proto_name_valid(issue, strlen(issue)) && !strchr(issue, '/') &&
                  proto_name_valid(comment, strlen(comment)) && !strchr(comment, '/');
    if (usable) {
        snprintf(ctx->issue, sizeof ctx->issue, "%s", issue);
        snprintf(ctx->comment, sizeof ctx->comment, "%s", comment);
    }
    json_decref(body);
    if (!usable) {
        s_done(ctx, "ignored", ctx->tenant); /* another event, or not one we understand */
        return;
    }
    bool ours = false;
    if (jira_records_comment_ours(svc->records, ctx->tenant, ctx->comment, &ours) == 0 && ours) {
        s_done(ctx, "own_comment", ctx->tenant);
        return;
    }
    char path[300];
    snprintf(path, sizeof path, "/rest/api/3/issue/%s/comment/%s?expand=properties", ctx->issue,
             ctx->comment);
    if (jira_service_call(svc, &ctx->request, "jira.inbound webhook", ctx->tenant, "GET", path,
                          NULL, true, s_on_comment, ctx) != 0)
        free(ctx);
}

static void s_on_inbound(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    jira_service_t *svc = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    s_inbound_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
        return;
    }
    ctx->svc = svc;
    ctx->request = request;
    proto_decode_error_t why;
    if (proto_jira_inbound_decode(&ctx->in, payload, size, &why) != 0) {
        jira_service_undecodable(svc, &ctx->request, "jira.inbound", &why);
        free(ctx);
        return;
    }
    proto_jira_inbound_t *in = &ctx->in;
    snprintf(ctx->method, sizeof ctx->method, "%.*s", (int)in->method_len, in->method);
    snprintf(ctx->path, sizeof ctx->path, "%.*s", (int)in->path_len, in->path);
    if (in->has_query)
        snprintf(ctx->query, sizeof ctx->query, "%.*s", (int)in->query_len, in->query);
    /* "JWT <token>" (Connect) */
    if (!in->has_authorization || in->authorization_len < 5 ||
        memcmp(in->authorization, "JWT ", 4) != 0 || in->authorization_len - 4 > JWT_MAX_TOKEN) {
        s_refuse(ctx, "unauthorized", "an Atlassian Connect JWT is required");
        return;
    }
    snprintf(ctx->token, sizeof ctx->token, "%.*s", (int)in->authorization_len - 4,
             in->authorization + 4);
    if (strcmp(in->route, "installed") == 0 || strcmp(in->route, "uninstalled") == 0)
        s_lifecycle(ctx);
    else if (strcmp(in->route, "webhook") == 0)
        s_webhook(ctx);
    else
        s_refuse(ctx, "bad_request", "jira.inbound: unknown route");
}

int jira_inbound_register(jira_service_t *self)
{
    return worker_on(self->worker, "jira.inbound", s_on_inbound, self);
}

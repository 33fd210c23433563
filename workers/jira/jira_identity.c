/*  jira_identity.c - jira.identity (and the customer half of session.authenticate): a
    customer's verified e-mail -> their Jira (service desk) account id. The mapping is kept in DynamoDB under the e-mail's hash (the address
    itself is not stored); the first time, the customer is found in Jira by e-mail or created
    as a service-desk customer. */
#include "../../common/plog.h"
#include "jira_service.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    jira_service_t *svc;
    worker_request_t *request;
    char tenant[PROTO_NAME_MAX + 1];
    bool session;             /* answer session.authenticate, not jira.identity */
    char *session_token;      /* owned, may be NULL: rides in the session identity */
    char email[256];
    char display_name[256];
    char hash[65];
    bool created;
    bool searched_again;
} s_identity_t;

static void s_search(s_identity_t *ctx);

static void s_free(s_identity_t *ctx)
{
    free(ctx->session_token);
    free(ctx);
}

/* Answers with account. from_jira: Jira just gave it (searched or created), so it is
   remembered; one read from the store is not written back. */
static void s_finish(s_identity_t *ctx, const char *account, bool from_jira)
{
    jira_service_t *svc = ctx->svc;
    if (!proto_name_valid(account, strlen(account))) {
        worker_reply_error(svc->worker, &ctx->request, "jira_refused",
                           "jira.identity: Jira gave an unusable account id");
        s_free(ctx);
        return;
    }
    if (from_jira && jira_records_identity_put(svc->records, ctx->tenant, ctx->hash, account) != 0)
        (*svc->store_errors)++; /* found again through Jira next time */
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    int rc;
    if (ctx->session) {
        proto_session_identity_t identity = {
            .has_display_name = ctx->display_name[0] != '\0',
            .display_name = ctx->display_name,
            .display_name_len = (uint32_t)strlen(ctx->display_name)};
        proto_name_set(identity.kind, "customer");
        proto_name_set(identity.account, account);
        if (ctx->session_token) {
            identity.has_token = true;
            identity.token = ctx->session_token;
            identity.token_len = (uint32_t)strlen(ctx->session_token);
        }
        rc = proto_session_identity_encode(&identity, &encoded);
    } else {
        proto_jira_identity_reply_t reply = {.created = ctx->created};
        proto_name_set(reply.account, account);
        rc = proto_jira_identity_reply_encode(&reply, &encoded);
    }
    if (rc == 0)
        worker_reply(svc->worker, &ctx->request, encoded.data, encoded.size);
    else
        worker_reply_error(svc->worker, &ctx->request, "internal", "out of memory");
    proto_buffer_release(&encoded);
    (*svc->identities)++;
    s_free(ctx);
}

static void s_fail(s_identity_t *ctx, const jira_result_t *result)
{
    jira_service_jira_failed(ctx->svc, &ctx->request, "jira.identity", result);
    s_free(ctx);
}

static void s_on_created(const jira_result_t *result, void *arg)
{
    s_identity_t *ctx = arg;
    const char *account = json_string_value(json_object_get(result->body, "accountId"));
    if (result->outcome == JIRA_OK && account) {
        ctx->created = true;
        s_finish(ctx, account, true);
    } else if ((result->outcome == JIRA_REFUSED && result->status == 400) ||
               result->outcome == JIRA_AMBIGUOUS) {
        /* it exists already (another replica, or our own lost answer): find it */
        if (ctx->searched_again) {
            s_fail(ctx, result);
            return;
        }
        ctx->searched_again = true;
        s_search(ctx);
    } else
        s_fail(ctx, result);
}

static void s_create(s_identity_t *ctx)
{
    json_t *body = json_pack("{s:s, s:s}", "email", ctx->email, "displayName",
                             *ctx->display_name ? ctx->display_name : ctx->email);
    int rc = body ? jira_service_call(ctx->svc, &ctx->request, "jira.identity", ctx->tenant,
                                      "POST", "/rest/servicedeskapi/customer", body, false,
                                      s_on_created, ctx)
                  : -1;
    json_decref(body);
    if (rc != 0 && ctx->request)
        worker_reply_error(ctx->svc->worker, &ctx->request, "internal", "out of memory");
    if (rc != 0)
        s_free(ctx);
}

static void s_on_search(const jira_result_t *result, void *arg)
{
    s_identity_t *ctx = arg;
    if (result->outcome != JIRA_OK) {
        s_fail(ctx, result);
        return;
    }
    size_t i;
    json_t *user;
    json_array_foreach(result->body, i, user)
    {
        const char *email = json_string_value(json_object_get(user, "emailAddress"));
        const char *account = json_string_value(json_object_get(user, "accountId"));
        if (email && account && strcasecmp(email, ctx->email) == 0) {
            s_finish(ctx, account, true);
            return;
        }
    }
    if (ctx->searched_again) {
        jira_result_t missing = {.outcome = JIRA_REFUSED, .status = result->status,
                                 .error = "Jira neither created nor found the customer"};
        s_fail(ctx, &missing);
        return;
    }
    s_create(ctx);
}

static void s_search(s_identity_t *ctx)
{
    char escaped[800], path[900];
    jira_service_escape(ctx->email, strlen(ctx->email), escaped, sizeof escaped);
    snprintf(path, sizeof path, "/rest/api/3/user/search?query=%s&maxResults=20", escaped);
    if (jira_service_call(ctx->svc, &ctx->request, "jira.identity", ctx->tenant, "GET", path,
                          NULL, true, s_on_search, ctx) != 0)
        s_free(ctx);
}

bool jira_identity_email_ok(const char *text, size_t length)
{
    const char *at = memchr(text, '@', length);
    if (!at || at == text || at == text + length - 1 ||
        memchr(at + 1, '@', length - (size_t)(at - text) - 1) || length > 254)
        return false;
    for (size_t i = 0; i < length; i++)
        if (text[i] <= ' ' || text[i] > '~')
            return false;
    return true;
}

void jira_identity_resolve(jira_service_t *svc, worker_request_t *request, const char *tenant,
                           const char *email, size_t email_length, const char *display_name,
                           size_t display_name_length, bool session, const char *session_token)
{
    s_identity_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
        return;
    }
    ctx->svc = svc;
    ctx->request = request;
    ctx->session = session;
    if (session_token && !(ctx->session_token = strdup(session_token))) {
        free(ctx);
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
        return;
    }
    snprintf(ctx->tenant, sizeof ctx->tenant, "%s", tenant);
    snprintf(ctx->email, sizeof ctx->email, "%.*s", (int)email_length, email);
    if (display_name)
        snprintf(ctx->display_name, sizeof ctx->display_name, "%.*s", (int)display_name_length,
                 display_name);
    jira_records_identity_hash(ctx->email, strlen(ctx->email), ctx->hash);
    char account[PROTO_NAME_MAX + 1];
    bool found = false;
    int rc = jira_records_identity_get(svc->records, ctx->tenant, ctx->hash, account,
                                       sizeof account, &found);
    if (rc == 0 && found) {
        s_finish(ctx, account, false);
        return;
    }
    if (rc != 0)
        (*svc->store_errors)++; /* ask Jira instead */
    s_search(ctx);
}

static void s_on_identity(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    jira_service_t *svc = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_jira_identity_t ask;
    proto_decode_error_t why;
    if (proto_jira_identity_decode(&ask, payload, size, &why) != 0) {
        jira_service_undecodable(svc, &request, "jira.identity", &why);
        return;
    }
    if (!jira_identity_email_ok(ask.email, ask.email_len) || strchr(ask.tenant, '|')) {
        jira_service_bad_request(svc, &request, "jira.identity",
                                 "email must be an e-mail address");
        return;
    }
    jira_identity_resolve(svc, request, ask.tenant, ask.email, ask.email_len,
                          ask.has_display_name ? ask.display_name : NULL, ask.display_name_len,
                          false, NULL);
}

int jira_identity_register(jira_service_t *self)
{
    return worker_on(self->worker, "jira.identity", s_on_identity, self);
}

/*  jira_conversations.c - conversation.start (an issue), conversation.message (a comment,
    exactly once) and conversation.transcript (the comments, read back from Jira).

    Exactly once: before a comment is written its message id is marked "pending" in Redis, and
    the comment carries the id in its "parley" property. A message already done is answered
    from the mark; one left pending (a replica died, or Jira's answer was lost) is first looked
    for among the issue's newest comments, and written only if it is not there. Ordering is
    the broker's job: senders give a conversation's messages one order key.

    A transcript after a comment (a client resuming) walks back from the newest comment to
    that one, so it reads what was missed, not the whole conversation; from the start (or when
    more than S_TRANSCRIPT_PAGES pages were missed) it reads forward. Either way a reply holds
    the oldest `limit` messages after the comment, and says `more` when there are others. */
#include "../../common/adf.h"
#include "../../common/plog.h"
#include "jira_service.h"

#include <stdlib.h>
#include <string.h>

#define S_LOOKUP_PAGE 100      /* newest comments searched for a pending message */
#define S_LOOKUPS_MAX 5        /* lookups + rewrites of one message within one request */
#define S_SUMMARY_MAX 120      /* bytes of the issue summary taken from the first message */
#define S_CLAIM_STALE_MS 60000 /* a conversation claim this old belonged to a dead replica */
#define S_TRANSCRIPT_PAGES 50  /* pages of 100 comments read at most for one transcript */

/* --- conversation.message ------------------------------------------------------------------- */

typedef struct {
    jira_service_t *svc;
    worker_request_t *request;
    proto_conversation_message_t message; /* text borrowed from the request's payload */
    int lookups;
} s_message_t;

static void s_message_post(s_message_t *ctx);

static void s_message_answer(s_message_t *ctx, const char *comment, bool duplicate)
{
    jira_service_t *svc = ctx->svc;
    proto_conversation_persisted_t persisted = {.duplicate = duplicate};
    proto_name_set(persisted.issue, ctx->message.issue);
    proto_name_set(persisted.message, ctx->message.message);
    proto_name_set(persisted.comment, comment);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_conversation_persisted_encode(&persisted, &encoded) == 0) {
        char topic[2 * PROTO_NAME_MAX + 8];
        snprintf(topic, sizeof topic, "conv.%s.%s", ctx->message.tenant, ctx->message.issue);
        /* (the gateway that sent it tells its own sockets from the reply) */
        if (!duplicate)
            worker_publish_as(svc->worker, ctx->message.has_origin ? ctx->message.origin : NULL,
                              topic, "conversation.persisted", encoded.data, encoded.size);
        worker_reply(svc->worker, &ctx->request, encoded.data, encoded.size);
    } else
        worker_reply_error(svc->worker, &ctx->request, "internal", "out of memory");
    proto_buffer_release(&encoded);
    if (duplicate)
        (*svc->duplicates)++;
    else
        (*svc->messages_written)++;
    free(ctx);
}

static void s_message_fail(s_message_t *ctx, const jira_result_t *result)
{
    jira_service_jira_failed(ctx->svc, &ctx->request, "conversation.message", result);
    free(ctx);
}

static void s_message_degraded(s_message_t *ctx)
{
    (*ctx->svc->store_errors)++;
    worker_reply_error(ctx->svc->worker, &ctx->request, "degraded",
                       "message store (Redis) unavailable; retry shortly");
    free(ctx);
}

/* Finds a comment whose parley property names message among page's comments; writes its id
   into comment. Returns true when found. */
static bool s_find_message(json_t *page, const char *message, char *comment, size_t size)
{
    size_t i, j;
    json_t *entry, *property;
    json_array_foreach(json_object_get(page, "comments"), i, entry)
    {
        json_array_foreach(json_object_get(entry, "properties"), j, property)
        {
            const char *key = json_string_value(json_object_get(property, "key"));
            json_t *value = json_object_get(property, "value");
            const char *id = json_string_value(json_object_get(value, "message"));
            const char *comment_id = json_string_value(json_object_get(entry, "id"));
            if (key && strcmp(key, "parley") == 0 && id && strcmp(id, message) == 0 &&
                comment_id) {
                snprintf(comment, size, "%s", comment_id);
                return true;
            }
        }
    }
    return false;
}

static void s_message_on_lookup(const jira_result_t *result, void *arg)
{
    s_message_t *ctx = arg;
    if (result->outcome != JIRA_OK) {
        s_message_fail(ctx, result);
        return;
    }
    char comment[PROTO_NAME_MAX + 1];
    if (s_find_message(result->body, ctx->message.message, comment, sizeof comment)) {
        if (jira_records_message_done(ctx->svc->records, ctx->message.tenant, ctx->message.issue,
                                      ctx->message.message, comment) != 0)
            (*ctx->svc->store_errors)++; /* Jira has it; the next resend looks again */
        s_message_answer(ctx, comment, true);
        return;
    }
    s_message_post(ctx); /* not there: the earlier attempt never reached Jira */
}

/* Looks for the message among the issue's newest comments. */
static void s_message_lookup(s_message_t *ctx)
{
    jira_service_t *svc = ctx->svc;
    if (++ctx->lookups > S_LOOKUPS_MAX) {
        jira_result_t gave_up = {.outcome = JIRA_UNAVAILABLE,
                                 .error = "Jira keeps failing; retry later"};
        s_message_fail(ctx, &gave_up);
        return;
    }
    (*svc->lookups)++;
    char path[300];
    snprintf(path, sizeof path,
             "/rest/api/3/issue/%s/comment?orderBy=-created&maxResults=%d&expand=properties",
             ctx->message.issue, S_LOOKUP_PAGE);
    if (jira_service_call(svc, &ctx->request, "conversation.message", ctx->message.tenant, "GET",
                          path, NULL, true, s_message_on_lookup, ctx) != 0)
        free(ctx);
}

static void s_message_on_post(const jira_result_t *result, void *arg)
{
    s_message_t *ctx = arg;
    if (result->outcome == JIRA_AMBIGUOUS) {
        s_message_lookup(ctx);
        return;
    }
    const char *comment = json_string_value(json_object_get(result->body, "id"));
    if (result->outcome != JIRA_OK || !comment || !proto_name_valid(comment, strlen(comment))) {
        if (result->outcome == JIRA_OK) {
            jira_result_t odd = {.outcome = JIRA_REFUSED, .status = result->status,
                                 .error = "Jira's answer had no comment id"};
            s_message_fail(ctx, &odd);
        } else
            s_message_fail(ctx, result);
        return;
    }
    if (jira_records_message_done(ctx->svc->records, ctx->message.tenant, ctx->message.issue,
                                  ctx->message.message, comment) != 0)
        (*ctx->svc->store_errors)++; /* stays pending: a resend looks in Jira first */
    s_message_answer(ctx, comment, false);
}

static void s_message_post(s_message_t *ctx)
{
    jira_service_t *svc = ctx->svc;
    char path[200];
    json_t *document = adf_from_text(ctx->message.text, ctx->message.text_len);
    json_t *body = json_pack("{s:o, s:[{s:s, s:{s:s, s:s, s:s}}]}", "body", document,
                             "properties", "key", "parley", "value", "message",
                             ctx->message.message, "author_kind", ctx->message.author_kind,
                             "author", ctx->message.author);
    snprintf(path, sizeof path, "/rest/api/3/issue/%s/comment", ctx->message.issue);
    int rc = body ? jira_service_call(svc, &ctx->request, "conversation.message",
                                      ctx->message.tenant, "POST", path, body, false,
                                      s_message_on_post, ctx)
                  : -1;
    json_decref(body);
    if (rc != 0 && ctx->request)
        worker_reply_error(svc->worker, &ctx->request, "internal", "out of memory");
    if (rc != 0)
        free(ctx);
}

static void s_on_message(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    jira_service_t *svc = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    s_message_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
        return;
    }
    ctx->svc = svc;
    ctx->request = request;
    proto_decode_error_t why;
    if (proto_conversation_message_decode(&ctx->message, payload, size, &why) != 0) {
        jira_service_undecodable(svc, &ctx->request, "conversation.message", &why);
        free(ctx);
        return;
    }
    proto_conversation_message_t *m = &ctx->message;
    json_t *probe = adf_from_text(m->text, m->text_len); /* also checks UTF-8 and emptiness */
    bool text_ok = probe != NULL;
    json_decref(probe);
    const char *bad = strcmp(m->author_kind, "customer") && strcmp(m->author_kind, "agent")
                          ? "author_kind must be customer or agent"
                      : !text_ok ? "text must be non-empty UTF-8"
                      : strchr(m->tenant, '|') || strchr(m->issue, '|') || strchr(m->issue, '/')
                          ? "names may not contain '|' or '/'"
                          : NULL;
    if (bad) {
        jira_service_bad_request(svc, &ctx->request, "conversation.message", bad);
        free(ctx);
        return;
    }
    jira_message_state_t state;
    char comment[PROTO_NAME_MAX + 1] = "";
    /* marks it pending when new: from here on a lost answer is looked up, not rewritten */
    if (jira_records_message_begin(svc->records, m->tenant, m->issue, m->message, &state, comment,
                                   sizeof comment) != 0) {
        s_message_degraded(ctx);
        return;
    }
    if (state == JIRA_MESSAGE_DONE && proto_name_valid(comment, strlen(comment)))
        s_message_answer(ctx, comment, true);
    else if (state == JIRA_MESSAGE_PENDING)
        s_message_lookup(ctx);
    else
        s_message_post(ctx);
}

/* --- conversation.start ----------------------------------------------------------------------- */

typedef struct {
    jira_service_t *svc;
    worker_request_t *request;
    proto_conversation_start_t start;
    char issue_type[PROTO_NAME_MAX + 1];
    char summary[S_SUMMARY_MAX + 8];
    int searches;   /* JQL lookups for an issue an earlier attempt may have created */
} s_start_t;

static void s_start_create(s_start_t *ctx);
static void s_start_search(s_start_t *ctx);

static void s_start_answer(s_start_t *ctx, const char *issue, const char *issue_id, bool created)
{
    jira_service_t *svc = ctx->svc;
    proto_conversation_started_t started = {.created = created};
    proto_name_set(started.conversation, ctx->start.conversation);
    proto_name_set(started.issue, issue);
    proto_name_set(started.issue_id, issue_id);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_conversation_started_encode(&started, &encoded) == 0) {
        if (created) {
            char topic[2 * PROTO_NAME_MAX + 16];
            snprintf(topic, sizeof topic, "project.%s.%s", ctx->start.tenant, ctx->start.project);
            worker_publish(svc->worker, topic, "conversation.started", encoded.data,
                           encoded.size);
            (*svc->conversations_started)++;
        }
        worker_reply(svc->worker, &ctx->request, encoded.data, encoded.size);
    } else
        worker_reply_error(svc->worker, &ctx->request, "internal", "out of memory");
    proto_buffer_release(&encoded);
    free(ctx);
}

/* Records the conversation's issue and answers. */
static void s_start_found(s_start_t *ctx, const char *key, const char *id, bool created)
{
    if (jira_records_conversation_open(ctx->svc->records, ctx->start.tenant,
                                       ctx->start.conversation, key, id, zclock_time()) != 0)
        (*ctx->svc->store_errors)++; /* answered anyway; the claim goes stale */
    s_start_answer(ctx, key, id, created);
}

static void s_start_on_search(const jira_result_t *result, void *arg)
{
    s_start_t *ctx = arg;
    if (result->outcome != JIRA_OK) {
        jira_service_jira_failed(ctx->svc, &ctx->request, "conversation.start", result);
        free(ctx);
        return;
    }
    json_t *issue = json_array_get(json_object_get(result->body, "issues"), 0);
    const char *key = json_string_value(json_object_get(issue, "key"));
    const char *id = json_string_value(json_object_get(issue, "id"));
    if (key && id && proto_name_valid(key, strlen(key)) && proto_name_valid(id, strlen(id)))
        s_start_found(ctx, key, id, true); /* an earlier attempt made it */
    else
        s_start_create(ctx);
}

/* Writes value as a JQL string literal: in double quotes, '"' and '\\' escaped. */
static void s_jql_quote(const char *value, char *out, size_t size)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *value && n + 3 < size; value++) {
        if (*value == '"' || *value == '\\')
            out[n++] = '\\';
        out[n++] = *value;
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* Looks in Jira for an issue whose parley property names this conversation. */
static void s_start_search(s_start_t *ctx)
{
    jira_service_t *svc = ctx->svc;
    if (++ctx->searches > 3) {
        jira_result_t gave_up = {.outcome = JIRA_UNAVAILABLE,
                                 .error = "Jira keeps failing; retry later"};
        jira_service_jira_failed(svc, &ctx->request, "conversation.start", &gave_up);
        free(ctx);
        return;
    }
    (*svc->lookups)++;
    char project[2 * PROTO_NAME_MAX + 3], conversation[2 * PROTO_NAME_MAX + 3];
    char jql[400], escaped[1200], path[1400];
    s_jql_quote(ctx->start.project, project, sizeof project);
    s_jql_quote(ctx->start.conversation, conversation, sizeof conversation);
    snprintf(jql, sizeof jql, "project = %s AND issue.property[parley].conversation = %s",
             project, conversation);
    jira_service_escape(jql, strlen(jql), escaped, sizeof escaped);
    snprintf(path, sizeof path, "/rest/api/3/search?jql=%s&maxResults=1&fields=summary",
             escaped);
    if (jira_service_call(svc, &ctx->request, "conversation.start", ctx->start.tenant, "GET",
                          path, NULL, true, s_start_on_search, ctx) != 0)
        free(ctx);
}

static void s_start_on_created(const jira_result_t *result, void *arg)
{
    s_start_t *ctx = arg;
    if (result->outcome == JIRA_AMBIGUOUS) {
        s_start_search(ctx); /* created or not? Jira knows */
        return;
    }
    const char *key = json_string_value(json_object_get(result->body, "key"));
    const char *id = json_string_value(json_object_get(result->body, "id"));
    if (result->outcome != JIRA_OK || !key || !id || !proto_name_valid(key, strlen(key)) ||
        !proto_name_valid(id, strlen(id))) {
        jira_result_t odd = {.outcome = JIRA_REFUSED, .status = result->status,
                             .error = "Jira's answer had no issue key"};
        jira_service_jira_failed(ctx->svc, &ctx->request, "conversation.start",
                                 result->outcome == JIRA_OK ? &odd : result);
        free(ctx);
        return;
    }
    s_start_found(ctx, key, id, true);
}

/* The issue summary: the first message's first line, spaces collapsed, cut at a character
   boundary. */
static void s_summary(const char *text, size_t length, char *out, size_t size)
{
    size_t n = 0;
    bool space = false;
    for (size_t i = 0; i < length && text[i] != '\n' && text[i] != '\r'; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c < 0x20) {
            space = n > 0;
            continue;
        }
        size_t width = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (n + space + width + 4 > size || n + space + width > S_SUMMARY_MAX) {
            memcpy(out + n, "\xe2\x80\xa6", 3); /* … */
            n += 3;
            break;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        memcpy(out + n, text + i, width);
        n += width;
        i += width - 1;
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, size, "Chat");
}

static void s_on_start(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    jira_service_t *svc = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    s_start_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
        return;
    }
    ctx->svc = svc;
    ctx->request = request;
    proto_decode_error_t why;
    if (proto_conversation_start_decode(&ctx->start, payload, size, &why) != 0) {
        jira_service_undecodable(svc, &ctx->request, "conversation.start", &why);
        free(ctx);
        return;
    }
    proto_conversation_start_t *s = &ctx->start;
    json_t *probe = adf_from_text(s->first_message, s->first_message_len);
    bool text_ok = probe != NULL;
    json_decref(probe);
    if (!text_ok || strchr(s->tenant, '|')) {
        jira_service_bad_request(svc, &ctx->request, "conversation.start",
                                 text_ok ? "names may not contain '|'"
                                         : "first_message must be non-empty UTF-8");
        free(ctx);
        return;
    }
    jira_conversation_record_t record;
    bool found = false;
    int64_t now = zclock_time();
    int rc = jira_records_conversation_get(svc->records, s->tenant, s->conversation, &record,
                                           &found);
    if (rc == 0 && found && record.open) {
        s_start_answer(ctx, record.issue_key, record.issue_id, false);
        return;
    }
    if (rc == 0)
        rc = jira_records_conversation_claim(svc->records, s->tenant, s->conversation, now,
                                             now - S_CLAIM_STALE_MS);
    if (rc == 1) {
        worker_reply_error(svc->worker, &ctx->request, "busy",
                           "this conversation is being created; retry shortly");
        free(ctx);
        return;
    }
    if (rc != 0) {
        (*svc->store_errors)++;
        worker_reply_error(svc->worker, &ctx->request, "degraded",
                           "conversation store (DynamoDB) unavailable; retry shortly");
        free(ctx);
        return;
    }
    bool known;
    if (jira_tenants_issue_type(svc->tenants, s->tenant, s->project, ctx->issue_type,
                                sizeof ctx->issue_type, &known) != 0)
        (*svc->store_errors)++; /* the default issue type it is */
    s_summary(s->first_message, s->first_message_len, ctx->summary, sizeof ctx->summary);
    if (found) /* we took over a stale claim: its owner may have created the issue */
        s_start_search(ctx);
    else
        s_start_create(ctx);
}

static void s_start_create(s_start_t *ctx)
{
    jira_service_t *svc = ctx->svc;
    proto_conversation_start_t *s = &ctx->start;
    json_t *body = json_pack(
        "{s:{s:{s:s}, s:{s:s}, s:s, s:{s:s}}, s:[{s:s, s:{s:s, s:s}}]}", "fields", "project",
        "key", s->project, "issuetype", "name", ctx->issue_type, "summary", ctx->summary,
        "reporter", "id", s->customer, "properties", "key", "parley", "value", "conversation",
        s->conversation, "channel", s->has_channel ? s->channel : "widget");
    int rc = body ? jira_service_call(svc, &ctx->request, "conversation.start", s->tenant,
                                      "POST", "/rest/api/3/issue", body, false,
                                      s_start_on_created, ctx)
                  : -1;
    json_decref(body);
    if (rc != 0 && ctx->request)
        worker_reply_error(svc->worker, &ctx->request, "internal", "out of memory");
    if (rc != 0)
        free(ctx);
}

/* --- conversation.transcript ------------------------------------------------------------------ */

typedef struct {
    jira_service_t *svc;
    worker_request_t *request;
    proto_conversation_transcript_t ask;
    json_t *messages;     /* collected, owned */
    long long after;      /* comment ids above this one */
    uint32_t limit;
    int start_at, pages;
    bool newest_first;    /* walking back from the newest comment to `after` */
    size_t dropped;       /* newest_first: collected, then let go for older ones (limit) */
} s_transcript_t;

static void s_transcript_page(s_transcript_t *ctx);

static void s_transcript_done(s_transcript_t *ctx, bool more)
{
    jira_service_t *svc = ctx->svc;
    char *text = json_dumps(ctx->messages, JSON_COMPACT);
    proto_conversation_transcript_reply_t reply = {.messages = (const uint8_t *)text,
                                                   .messages_len = text ? (uint32_t)strlen(text)
                                                                        : 0,
                                                   .more = more};
    proto_name_set(reply.issue, ctx->ask.issue);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (text && proto_conversation_transcript_reply_encode(&reply, &encoded) == 0)
        worker_reply(svc->worker, &ctx->request, encoded.data, encoded.size);
    else
        worker_reply_error(svc->worker, &ctx->request, "internal", "out of memory");
    proto_buffer_release(&encoded);
    free(text);
    json_decref(ctx->messages);
    free(ctx);
}

/* Adds one Jira comment to the transcript as a message. */
static void s_transcript_add(s_transcript_t *ctx, json_t *comment)
{
    const char *id = json_string_value(json_object_get(comment, "id"));
    if (!id || atoll(id) <= ctx->after)
        return;
    json_t *parley = NULL, *property;
    size_t i;
    json_array_foreach(json_object_get(comment, "properties"), i, property)
    {
        const char *key = json_string_value(json_object_get(property, "key"));
        if (key && strcmp(key, "parley") == 0)
            parley = json_object_get(property, "value");
    }
    char *text = adf_to_text(json_object_get(comment, "body"), PROTO_MESSAGE_TEXT_MAX);
    json_t *author = json_object_get(comment, "author");
    const char *kind = json_string_value(json_object_get(parley, "author_kind"));
    const char *who = json_string_value(json_object_get(parley, "author"));
    json_t *entry = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?}", "comment", id, "author_kind", kind ? kind : "agent",
        "author", who ? who : json_string_value(json_object_get(author, "accountId"))
                                  ? json_string_value(json_object_get(author, "accountId"))
                                  : "",
        "text", text ? text : "", "created", json_string_value(json_object_get(comment, "created")));
    const char *message = json_string_value(json_object_get(parley, "message"));
    if (entry && message)
        json_object_set_new(entry, "message", json_string(message));
    if (entry)
        json_array_append_new(ctx->messages, entry);
    free(text);
}

/* A page of the walk back from the newest comment: collects those after `after` until it
   meets `after` itself (or an older one), keeping the oldest `limit`; what the client missed
   costs a page per 100 missed comments, whatever the conversation's length. Returns true
   when the transcript is complete (sent, ctx freed). */
static bool s_transcript_back(s_transcript_t *ctx, json_t *comments, json_int_t total)
{
    bool reached = false;
    size_t i;
    json_t *comment;
    json_array_foreach(comments, i, comment)
    {
        const char *id = json_string_value(json_object_get(comment, "id"));
        if (id && atoll(id) <= ctx->after) {
            reached = true;
            break;
        }
        s_transcript_add(ctx, comment);
        if (json_array_size(ctx->messages) > ctx->limit) {
            json_array_remove(ctx->messages, 0); /* the newest: a later request gets it */
            ctx->dropped++;
        }
    }
    ctx->start_at += (int)json_array_size(comments);
    if (!reached && json_array_size(comments) > 0 && ctx->start_at < total)
        return false;
    json_t *oldest_first = json_array();
    for (size_t n = json_array_size(ctx->messages); oldest_first && n > 0; n--)
        json_array_append(oldest_first, json_array_get(ctx->messages, n - 1));
    json_decref(ctx->messages);
    ctx->messages = oldest_first ? oldest_first : json_array();
    s_transcript_done(ctx, ctx->dropped > 0);
    return true;
}

static void s_transcript_on_page(const jira_result_t *result, void *arg)
{
    s_transcript_t *ctx = arg;
    if (result->outcome != JIRA_OK) {
        json_decref(ctx->messages);
        jira_service_jira_failed(ctx->svc, &ctx->request, "conversation.transcript", result);
        free(ctx);
        return;
    }
    json_t *comments = json_object_get(result->body, "comments");
    if (ctx->newest_first) {
        if (s_transcript_back(ctx, comments,
                              json_integer_value(json_object_get(result->body, "total"))))
            return;
        if (++ctx->pages >= S_TRANSCRIPT_PAGES) {
            /* more missed than the walk back reads: from the first comment forward instead */
            json_array_clear(ctx->messages);
            ctx->newest_first = false;
            ctx->dropped = 0;
            ctx->start_at = ctx->pages = 0;
        }
        s_transcript_page(ctx);
        return;
    }
    size_t i, before = json_array_size(ctx->messages);
    json_t *comment;
    json_array_foreach(comments, i, comment)
    {
        if (json_array_size(ctx->messages) >= ctx->limit) {
            s_transcript_done(ctx, true);
            return;
        }
        s_transcript_add(ctx, comment);
    }
    json_int_t total = json_integer_value(json_object_get(result->body, "total"));
    ctx->start_at += (int)json_array_size(comments);
    /* pages of comments up to `after` (skipped) do not count: a reply with nothing and
       `more` would leave the client nowhere to go on from */
    bool yielded = json_array_size(ctx->messages) > before;
    if (json_array_size(comments) == 0 || ctx->start_at >= total ||
        (yielded && ++ctx->pages >= S_TRANSCRIPT_PAGES))
        s_transcript_done(ctx, ctx->start_at < total);
    else
        s_transcript_page(ctx);
}

static void s_transcript_page(s_transcript_t *ctx)
{
    char path[300];
    snprintf(path, sizeof path,
             "/rest/api/3/issue/%s/comment?orderBy=%s&startAt=%d&maxResults=100"
             "&expand=properties",
             ctx->ask.issue, ctx->newest_first ? "-created" : "created", ctx->start_at);
    if (jira_service_call(ctx->svc, &ctx->request, "conversation.transcript", ctx->ask.tenant,
                          "GET", path, NULL, true, s_transcript_on_page, ctx) != 0) {
        json_decref(ctx->messages);
        free(ctx);
    }
}

static void s_on_transcript(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    jira_service_t *svc = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    s_transcript_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx || !(ctx->messages = json_array())) {
        free(ctx);
        worker_reply_error(svc->worker, &request, "internal", "out of memory");
        return;
    }
    ctx->svc = svc;
    ctx->request = request;
    proto_decode_error_t why;
    bool decoded = proto_conversation_transcript_decode(&ctx->ask, payload, size, &why) == 0;
    if (!decoded || strchr(ctx->ask.issue, '/')) {
        if (decoded)
            jira_service_bad_request(svc, &ctx->request, "conversation.transcript",
                                     "bad issue key");
        else
            jira_service_undecodable(svc, &ctx->request, "conversation.transcript", &why);
        json_decref(ctx->messages);
        free(ctx);
        return;
    }
    ctx->limit = ctx->ask.has_limit ? ctx->ask.limit : 1000;
    ctx->after = ctx->ask.has_after_comment ? atoll(ctx->ask.after_comment) : 0;
    ctx->newest_first = ctx->after > 0; /* a resume: usually the last few comments */
    s_transcript_page(ctx);
}

int jira_conversations_register(jira_service_t *self)
{
    if (worker_on(self->worker, "conversation.message", s_on_message, self) != 0 ||
        worker_on(self->worker, "conversation.start", s_on_start, self) != 0 ||
        worker_on(self->worker, "conversation.transcript", s_on_transcript, self) != 0)
        return -1;
    return 0;
}

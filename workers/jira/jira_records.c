/*  jira_records.c - see jira_records.h. */
#include "jira_records.h"
#include "../../proto/proto.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_WEEK_S "604800"
#define S_IDENTITY_CACHE_S "86400" /* an identity read from DynamoDB stays in Redis a day */

struct jira_records_t {
    redis_client_t *redis; /* borrowed */
    dynamo_t *dynamo;      /* borrowed */
    char table[64];
};

jira_records_t *jira_records_new(redis_client_t *redis, dynamo_t *dynamo, const char *table)
{
    jira_records_t *self = calloc(1, sizeof *self);
    if (self) {
        self->redis = redis;
        self->dynamo = dynamo;
        snprintf(self->table, sizeof self->table, "%s", table);
    }
    return self;
}

void jira_records_destroy(jira_records_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

/* Runs one command; returns the reply (owned) or NULL on failure or an error reply. */
static redisReply *s_command(jira_records_t *self, int argc, const char **argv)
{
    redisReply *reply = redis_client_command(self->redis, argc, argv, NULL);
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Reads a message's mark; marks it pending when it has none (one round trip). */
static const char *s_begin_script =
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if v then return v end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], 'pending')\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return false\n";

int jira_records_message_begin(jira_records_t *self, const char *tenant, const char *issue,
                               const char *message, jira_message_state_t *state,
                               char *comment, size_t comment_size)
{
    char key[200];
    snprintf(key, sizeof key, "jmsg|%s|%s", tenant, issue);
    const char *argv[] = {"EVAL", s_begin_script, "1", key, message, S_WEEK_S};
    redisReply *reply = s_command(self, 6, argv);
    if (!reply)
        return -1;
    *state = JIRA_MESSAGE_NEW;
    if (reply->type == REDIS_REPLY_STRING) {
        if (reply->len == 7 && memcmp(reply->str, "pending", 7) == 0)
            *state = JIRA_MESSAGE_PENDING;
        else {
            *state = JIRA_MESSAGE_DONE;
            snprintf(comment, comment_size, "%.*s", (int)reply->len, reply->str);
        }
    }
    freeReplyObject(reply);
    return 0;
}

int jira_records_message_done(jira_records_t *self, const char *tenant, const char *issue,
                              const char *message, const char *comment)
{
    char key[200], own[200];
    snprintf(key, sizeof key, "jmsg|%s|%s", tenant, issue);
    snprintf(own, sizeof own, "jown|%s|%s", tenant, comment);
    const char *set[] = {"SET", own, "1", "EX", S_WEEK_S};
    const char *hset[] = {"HSET", key, message, comment};
    const char *expire[] = {"EXPIRE", key, S_WEEK_S};
    const char *const *argvs[] = {set, hset, expire};
    const size_t *const lens[] = {NULL, NULL, NULL};
    int argcs[] = {5, 4, 3};
    redisReply *replies[3] = {NULL, NULL, NULL};
    int rc = redis_client_pipeline(self->redis, 3, argcs, argvs, lens, replies);
    for (int i = 0; i < 3; i++) {
        if (!replies[i] || replies[i]->type == REDIS_REPLY_ERROR)
            rc = -1;
        if (replies[i])
            freeReplyObject(replies[i]);
    }
    return rc == 0 ? 0 : -1;
}

int jira_records_comment_ours(jira_records_t *self, const char *tenant, const char *comment,
                              bool *ours)
{
    char own[200];
    snprintf(own, sizeof own, "jown|%s|%s", tenant, comment);
    const char *argv[] = {"EXISTS", own};
    redisReply *reply = s_command(self, 2, argv);
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        if (reply)
            freeReplyObject(reply);
        return -1;
    }
    *ours = reply->integer == 1;
    freeReplyObject(reply);
    return 0;
}

int jira_records_comment_first_seen(jira_records_t *self, const char *tenant,
                                    const char *comment, bool *first)
{
    char seen[200];
    snprintf(seen, sizeof seen, "jseen|%s|%s", tenant, comment);
    const char *argv[] = {"SET", seen, "1", "NX", "EX", S_WEEK_S};
    redisReply *reply = s_command(self, 6, argv);
    if (!reply)
        return -1;
    *first = reply->type == REDIS_REPLY_STATUS; /* OK; nil when it was there */
    freeReplyObject(reply);
    return 0;
}

static json_t *s_key(const char *tenant, const char *sk_prefix, const char *name)
{
    char pk[96], sk[160];
    snprintf(pk, sizeof pk, "TENANT#%s", tenant);
    snprintf(sk, sizeof sk, "%s%s", sk_prefix, name);
    return json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", pk, "sk", "S", sk);
}

static const char *s_string(json_t *item, const char *name)
{
    return json_string_value(json_object_get(json_object_get(item, name), "S"));
}

int jira_records_conversation_get(jira_records_t *self, const char *tenant,
                                  const char *conversation, jira_conversation_record_t *out,
                                  bool *found)
{
    memset(out, 0, sizeof *out);
    json_t *key = s_key(tenant, "CONV#", conversation), *item = NULL;
    dynamo_error_t error;
    int rc = dynamo_get_item(self->dynamo, self->table, key, &item, &error);
    json_decref(key);
    if (rc != 0)
        return rc;
    *found = item != NULL;
    if (item) {
        const char *issue_key = s_string(item, "issue_key"), *issue_id = s_string(item, "issue_id");
        const char *claimed = json_string_value(
            json_object_get(json_object_get(item, "claimed_ms"), "N"));
        out->open = issue_key && issue_id;
        snprintf(out->issue_key, sizeof out->issue_key, "%s", issue_key ? issue_key : "");
        snprintf(out->issue_id, sizeof out->issue_id, "%s", issue_id ? issue_id : "");
        out->claimed_ms = claimed ? atoll(claimed) : 0;
        json_decref(item);
    }
    return 0;
}

int jira_records_conversation_claim(jira_records_t *self, const char *tenant,
                                    const char *conversation, int64_t now_ms,
                                    int64_t stale_before_ms)
{
    json_t *item = s_key(tenant, "CONV#", conversation);
    char now[24], stale[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(stale, sizeof stale, "%lld", (long long)stale_before_ms);
    json_object_set_new(item, "conv_state", json_pack("{s:s}", "S", "creating"));
    json_object_set_new(item, "claimed_ms", json_pack("{s:s}", "N", now));
    json_t *values = json_pack("{s:{s:s}, s:{s:s}}", ":creating", "S", "creating", ":stale",
                               "N", stale);
    dynamo_error_t error;
    int rc = dynamo_put_item(self->dynamo, self->table, item,
                             "attribute_not_exists(pk) OR (conv_state = :creating AND claimed_ms < "
                             ":stale)",
                             values, &error);
    json_decref(item);
    json_decref(values);
    return rc == DYNAMO_E_CONDITION ? 1 : rc;
}

int jira_records_conversation_open(jira_records_t *self, const char *tenant,
                                   const char *conversation, const char *issue_key,
                                   const char *issue_id, int64_t now_ms)
{
    json_t *item = s_key(tenant, "CONV#", conversation);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    json_object_set_new(item, "conv_state", json_pack("{s:s}", "S", "open"));
    json_object_set_new(item, "issue_key", json_pack("{s:s}", "S", issue_key));
    json_object_set_new(item, "issue_id", json_pack("{s:s}", "S", issue_id));
    json_object_set_new(item, "opened_ms", json_pack("{s:s}", "N", now));
    dynamo_error_t error;
    int rc = dynamo_put_item(self->dynamo, self->table, item, NULL, NULL, &error);
    json_decref(item);
    return rc;
}

void jira_records_identity_hash(const char *email, size_t length, char hex[65])
{
    char folded[256];
    size_t n = 0;
    while (length && isspace((unsigned char)*email))
        email++, length--;
    while (length && isspace((unsigned char)email[length - 1]))
        length--;
    for (size_t i = 0; i < length && n < sizeof folded; i++)
        folded[n++] = (char)tolower((unsigned char)email[i]);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)folded, n, digest);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

/* The Redis key that caches an identity: jid|<tenant>|<hash>. */
static void s_identity_cache_key(char *key, size_t size, const char *tenant, const char *hash)
{
    snprintf(key, size, "jid|%s|%s", tenant, hash);
}

/* Remembers hash -> account in Redis for a day (a failure only costs the next lookup). */
static void s_identity_cache_set(jira_records_t *self, const char *tenant, const char *hash,
                                 const char *account)
{
    char key[200];
    s_identity_cache_key(key, sizeof key, tenant, hash);
    const char *argv[] = {"SET", key, account, "EX", S_IDENTITY_CACHE_S};
    redisReply *reply = s_command(self, 5, argv);
    if (reply)
        freeReplyObject(reply);
}

int jira_records_identity_get(jira_records_t *self, const char *tenant, const char *hash,
                              char *account, size_t account_size, bool *found)
{
    char cache_key[200];
    s_identity_cache_key(cache_key, sizeof cache_key, tenant, hash);
    const char *argv[] = {"GET", cache_key};
    redisReply *cached = s_command(self, 2, argv);
    /* what Redis says is checked like anything from outside: a bad entry is a miss */
    bool hit = cached && cached->type == REDIS_REPLY_STRING && cached->len > 0 &&
               cached->len < account_size && proto_name_valid(cached->str, cached->len);
    if (hit) {
        memcpy(account, cached->str, cached->len);
        account[cached->len] = '\0';
        *found = true;
    }
    if (cached)
        freeReplyObject(cached);
    if (hit)
        return 0;
    json_t *key = s_key(tenant, "IDENTITY#", hash), *item = NULL;
    dynamo_error_t error;
    int rc = dynamo_get_item(self->dynamo, self->table, key, &item, &error);
    json_decref(key);
    if (rc != 0)
        return rc;
    const char *value = item ? s_string(item, "account_id") : NULL;
    *found = value != NULL;
    snprintf(account, account_size, "%s", value ? value : "");
    json_decref(item);
    if (*found)
        s_identity_cache_set(self, tenant, hash, account);
    return 0;
}

int jira_records_identity_put(jira_records_t *self, const char *tenant, const char *hash,
                              const char *account)
{
    json_t *item = s_key(tenant, "IDENTITY#", hash);
    json_object_set_new(item, "account_id", json_pack("{s:s}", "S", account));
    dynamo_error_t error;
    int rc = dynamo_put_item(self->dynamo, self->table, item, NULL, NULL, &error);
    json_decref(item);
    if (rc == 0)
        s_identity_cache_set(self, tenant, hash, account);
    return rc;
}

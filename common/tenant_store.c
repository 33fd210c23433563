/*  tenant_store.c - see tenant_store.h. */
#include "tenant_store.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tenant_store_t {
    dynamo_t *dynamo;      /* borrowed */
    secrets_t *secrets;    /* borrowed */
    redis_client_t *redis; /* borrowed, may be NULL */
    char table[64];
    int64_t cache_ttl_s;
};

tenant_store_t *tenant_store_new(dynamo_t *dynamo, secrets_t *secrets, const char *table,
                                 redis_client_t *redis, int64_t cache_ttl_s)
{
    tenant_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dynamo = dynamo;
    self->secrets = secrets;
    self->redis = redis;
    snprintf(self->table, sizeof self->table, "%s", table);
    self->cache_ttl_s = cache_ttl_s;
    return self;
}

void tenant_store_destroy(tenant_store_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

static void s_wipe(char **secret)
{
    if (*secret) {
        OPENSSL_cleanse(*secret, strlen(*secret));
        free(*secret);
        *secret = NULL;
    }
}

void tenant_clear(tenant_t *tenant)
{
    s_wipe(&tenant->shared_secret);
    s_wipe(&tenant->api_token);
}

void tenant_project_clear(tenant_project_t *project)
{
    s_wipe(&project->secret_key);
}

bool tenant_visibility_valid(const char *visibility)
{
    static const char *modes[] = {"always", "schedule", "customer_local", "when_online"};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (strcmp(visibility, modes[i]) == 0)
            return true;
    return false;
}

static json_t *s_s(const char *value)
{
    return json_pack("{s:s}", "S", value);
}

static json_t *s_n(int64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)value);
    return json_pack("{s:s}", "N", text);
}

/* Adds attribute name = sealed(value) as a binary attribute when value is set. */
static int s_put_sealed(json_t *item, secrets_t *secrets, const char *pk, const char *sk,
                        const char *name, const char *value)
{
    if (!value)
        return 0;
    if (!secrets)
        return -1; /* a store without the key cannot write secrets */
    char aad[400];
    snprintf(aad, sizeof aad, "%s|%s|%s", pk, sk, name);
    size_t size;
    uint8_t *sealed = secrets_seal(secrets, aad, (const uint8_t *)value, strlen(value), &size);
    char *text = sealed ? secrets_base64_encode(sealed, size) : NULL;
    free(sealed);
    if (!text)
        return -1;
    json_object_set_new(item, name, json_pack("{s:s}", "B", text));
    free(text);
    return 0;
}

/* Opens a sealed binary attribute into *out (owned). Returns 0 (also when absent), or -1. */
static int s_get_sealed(json_t *item, secrets_t *secrets, const char *pk, const char *sk,
                        const char *name, char **out)
{
    *out = NULL;
    const char *text = json_string_value(json_object_get(json_object_get(item, name), "B"));
    if (!text || !secrets)
        return 0; /* absent, or a store that does not open secrets */
    char aad[400];
    snprintf(aad, sizeof aad, "%s|%s|%s", pk, sk, name);
    size_t size, plain_size;
    uint8_t *sealed = secrets_base64_decode(text, &size);
    uint8_t *plain = sealed ? secrets_open(secrets, aad, sealed, size, &plain_size) : NULL;
    free(sealed);
    if (!plain)
        return -1;
    *out = (char *)plain;
    return 0;
}

static void s_get_s(json_t *item, const char *name, char *out, size_t size)
{
    const char *value = json_string_value(json_object_get(json_object_get(item, name), "S"));
    snprintf(out, size, "%s", value ? value : "");
}

static int64_t s_get_n(json_t *item, const char *name)
{
    const char *value = json_string_value(json_object_get(json_object_get(item, name), "N"));
    return value ? atoll(value) : 0;
}

#define S_CACHE_KEY_MAX 300

/* The cache's key of pk/sk, cfg|pk|sk, in out (S_CACHE_KEY_MAX bytes). */
static void s_cache_key(char *out, const char *pk, const char *sk)
{
    snprintf(out, S_CACHE_KEY_MAX, "cfg|%s|%s", pk, sk);
}

/* What a cached value says: 0 with *item set (NULL: known absent), or -1 when reply is no
   usable value (a miss). */
static int s_cached_item(const redisReply *reply, json_t **item)
{
    if (!reply || reply->type != REDIS_REPLY_STRING)
        return -1;
    json_t *value = json_loadb(reply->str, reply->len, 0, NULL);
    int rc = json_is_object(value) || json_is_null(value) ? 0 : -1;
    if (rc == 0)
        *item = json_is_object(value) ? json_incref(value) : NULL;
    json_decref(value);
    return rc;
}

/* Stores items[i] (or "absent" when NULL) in the cache under cfg|pk|sks[i], count of them in
   one pipeline. */
static void s_cache_set_many(tenant_store_t *self, const char *pk, const char *const *sks,
                             json_t *const *items, size_t count)
{
    if (!self->redis || count == 0)
        return;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)self->cache_ttl_s);
    char (*keys)[S_CACHE_KEY_MAX] = calloc(count, sizeof *keys);
    char **texts = calloc(count, sizeof *texts);
    const char *(*argvs)[5] = calloc(count, sizeof *argvs);
    const char *const **argv_of = calloc(count, sizeof *argv_of);
    int *argcs = calloc(count, sizeof *argcs);
    redisReply **replies = calloc(count, sizeof *replies);
    if (keys && texts && argvs && argv_of && argcs && replies) {
        for (size_t i = 0; i < count; i++) {
            s_cache_key(keys[i], pk, sks[i]);
            texts[i] = items[i] ? json_dumps(items[i], JSON_COMPACT) : NULL;
            argvs[i][0] = "SET";
            argvs[i][1] = keys[i];
            argvs[i][2] = texts[i] ? texts[i] : "null";
            argvs[i][3] = "EX";
            argvs[i][4] = ttl;
            argv_of[i] = argvs[i];
            argcs[i] = 5;
        }
        if (redis_client_pipeline(self->redis, (int)count, argcs, argv_of, NULL, replies) == 0)
            for (size_t i = 0; i < count; i++)
                freeReplyObject(replies[i]);
        for (size_t i = 0; i < count; i++)
            free(texts[i]);
    }
    free(keys);
    free(texts);
    free(argvs);
    free(argv_of);
    free(argcs);
    free(replies);
}

/* Stores item (or "absent" when item is NULL) in the cache under cfg|pk|sk. */
static void s_cache_set(tenant_store_t *self, const char *pk, const char *sk, json_t *item)
{
    s_cache_set_many(self, pk, &sk, &item, 1);
}

/* Looks pk/sk up in the cache: 0 with *item set (NULL: known absent), or -1 on a miss. */
static int s_cache_get(tenant_store_t *self, const char *pk, const char *sk, json_t **item)
{
    if (!self->redis)
        return -1;
    char key[S_CACHE_KEY_MAX];
    s_cache_key(key, pk, sk);
    const char *argv[] = {"GET", key};
    redisReply *reply = redis_client_command(self->redis, 2, argv, NULL);
    int rc = s_cached_item(reply, item);
    if (reply)
        freeReplyObject(reply);
    return rc;
}

/* Reads the item at pk/sk (through the cache). Returns 0 with *item set, 1 when absent, or a
   negative status. */
static int s_get(tenant_store_t *self, const char *pk, const char *sk, json_t **item,
                 dynamo_error_t *error)
{
    if (s_cache_get(self, pk, sk, item) == 0)
        return *item ? 0 : 1;
    json_t *key = json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", pk, "sk", "S", sk);
    int rc = dynamo_get_item(self->dynamo, self->table, key, item, error);
    json_decref(key);
    if (rc != 0)
        return rc;
    s_cache_set(self, pk, sk, *item);
    return *item ? 0 : 1;
}

static int s_put(tenant_store_t *self, json_t *item, dynamo_error_t *error)
{
    int rc = dynamo_put_item(self->dynamo, self->table, item, NULL, NULL, error);
    if (rc == 0)
        s_cache_set(self, json_string_value(json_object_get(json_object_get(item, "pk"), "S")),
                    json_string_value(json_object_get(json_object_get(item, "sk"), "S")), item);
    json_decref(item);
    return rc;
}

int tenant_store_put_tenant(tenant_store_t *self, const tenant_t *tenant, dynamo_error_t *error)
{
    char pk[96];
    snprintf(pk, sizeof pk, "TENANT#%s", tenant->id);
    json_t *item = json_pack("{s:o, s:o, s:o, s:o, s:o}", "pk", s_s(pk), "sk", s_s("META"),
                             "base_url", s_s(tenant->base_url), "auth", s_s(tenant->auth),
                             "installed_at", s_n(tenant->installed_at_ms));
    if (*tenant->client_key)
        json_object_set_new(item, "client_key", s_s(tenant->client_key));
    if (*tenant->api_user)
        json_object_set_new(item, "api_user", s_s(tenant->api_user));
    if (tenant->uninstalled_at_ms)
        json_object_set_new(item, "uninstalled_at", s_n(tenant->uninstalled_at_ms));
    if (s_put_sealed(item, self->secrets, pk, "META", "shared_secret", tenant->shared_secret) ||
        s_put_sealed(item, self->secrets, pk, "META", "api_token", tenant->api_token)) {
        json_decref(item);
        return DYNAMO_E_OTHER;
    }
    return s_put(self, item, error);
}

int tenant_store_get_tenant(tenant_store_t *self, const char *id, tenant_t *out,
                            dynamo_error_t *error)
{
    memset(out, 0, sizeof *out);
    char pk[96];
    snprintf(pk, sizeof pk, "TENANT#%s", id);
    json_t *item;
    int rc = s_get(self, pk, "META", &item, error);
    if (rc != 0)
        return rc;
    snprintf(out->id, sizeof out->id, "%s", id);
    s_get_s(item, "base_url", out->base_url, sizeof out->base_url);
    s_get_s(item, "auth", out->auth, sizeof out->auth);
    s_get_s(item, "client_key", out->client_key, sizeof out->client_key);
    s_get_s(item, "api_user", out->api_user, sizeof out->api_user);
    out->installed_at_ms = s_get_n(item, "installed_at");
    out->uninstalled_at_ms = s_get_n(item, "uninstalled_at");
    rc = s_get_sealed(item, self->secrets, pk, "META", "shared_secret", &out->shared_secret) ||
                 s_get_sealed(item, self->secrets, pk, "META", "api_token", &out->api_token)
             ? TENANT_STORE_SEALED_BROKEN
             : 0;
    json_decref(item);
    if (rc)
        tenant_clear(out);
    return rc;
}

int tenant_store_put_project(tenant_store_t *self, const tenant_project_t *project,
                             dynamo_error_t *error)
{
    char pk[96], sk[96];
    snprintf(pk, sizeof pk, "TENANT#%s", project->tenant);
    snprintf(sk, sizeof sk, "PROJECT#%s", project->project);
    json_t *item =
        json_pack("{s:o, s:o, s:o, s:o, s:{s:b}}", "pk", s_s(pk), "sk", s_s(sk), "issue_type",
                  s_s(project->issue_type), "visibility", s_s(project->visibility),
                  "allow_anonymous", "BOOL", project->allow_anonymous);
    if (*project->visibility_schedule)
        json_object_set_new(item, "visibility_schedule", s_s(project->visibility_schedule));
    if (s_put_sealed(item, self->secrets, pk, sk, "secret_key", project->secret_key)) {
        json_decref(item);
        return DYNAMO_E_OTHER;
    }
    return s_put(self, item, error);
}

int tenant_store_get_project(tenant_store_t *self, const char *tenant, const char *project,
                             tenant_project_t *out, dynamo_error_t *error)
{
    memset(out, 0, sizeof *out);
    char pk[96], sk[96];
    snprintf(pk, sizeof pk, "TENANT#%s", tenant);
    snprintf(sk, sizeof sk, "PROJECT#%s", project);
    json_t *item;
    int rc = s_get(self, pk, sk, &item, error);
    if (rc != 0)
        return rc;
    snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
    snprintf(out->project, sizeof out->project, "%s", project);
    s_get_s(item, "issue_type", out->issue_type, sizeof out->issue_type);
    s_get_s(item, "visibility", out->visibility, sizeof out->visibility);
    s_get_s(item, "visibility_schedule", out->visibility_schedule, sizeof out->visibility_schedule);
    out->allow_anonymous =
        json_is_true(json_object_get(json_object_get(item, "allow_anonymous"), "BOOL"));
    rc = s_get_sealed(item, self->secrets, pk, sk, "secret_key", &out->secret_key)
             ? TENANT_STORE_SEALED_BROKEN
             : 0;
    json_decref(item);
    return rc;
}

int tenant_store_put_agent(tenant_store_t *self, const tenant_agent_t *agent, dynamo_error_t *error)
{
    char pk[96], sk[160];
    snprintf(pk, sizeof pk, "TENANT#%s", agent->tenant);
    snprintf(sk, sizeof sk, "AGENT#%s", agent->account);
    json_t *item = json_pack("{s:o, s:o}", "pk", s_s(pk), "sk", s_s(sk));
    if (agent->project_count) {
        json_t *set = json_array();
        for (uint32_t i = 0; i < agent->project_count; i++)
            json_array_append_new(set, json_string(agent->projects[i]));
        json_object_set_new(item, "projects", json_pack("{s:o}", "SS", set));
    }
    if (*agent->schedule)
        json_object_set_new(item, "schedule", s_s(agent->schedule));
    return s_put(self, item, error);
}

/* Fills out from an agent item (borrowed). */
static void s_agent_from_item(const char *tenant, const char *account, json_t *item,
                              tenant_agent_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
    snprintf(out->account, sizeof out->account, "%s", account);
    s_get_s(item, "schedule", out->schedule, sizeof out->schedule);
    json_t *set = json_object_get(json_object_get(item, "projects"), "SS");
    size_t i;
    json_t *value;
    json_array_foreach(set, i, value)
    {
        if (out->project_count == TENANT_PROJECTS_MAX || !json_is_string(value))
            break;
        snprintf(out->projects[out->project_count++], TENANT_NAME_MAX + 1, "%s",
                 json_string_value(value));
    }
}

int tenant_store_get_agent(tenant_store_t *self, const char *tenant, const char *account,
                           tenant_agent_t *out, dynamo_error_t *error)
{
    memset(out, 0, sizeof *out);
    char pk[96], sk[160];
    snprintf(pk, sizeof pk, "TENANT#%s", tenant);
    snprintf(sk, sizeof sk, "AGENT#%s", account);
    json_t *item;
    int rc = s_get(self, pk, sk, &item, error);
    if (rc != 0)
        return rc;
    s_agent_from_item(tenant, account, item, out);
    json_decref(item);
    return 0;
}

/* Looks up in the cache (one MGET) the items at pk/sks[i]: items[i] is set and found[i]
   true for each one the cache holds (NULL: known absent); the others are misses. */
static void s_cache_get_many(tenant_store_t *self, const char *pk, const char *const *sks,
                             size_t count, json_t **items, bool *found)
{
    char (*keys)[S_CACHE_KEY_MAX] = self->redis ? calloc(count, sizeof *keys) : NULL;
    const char **argv = keys ? calloc(count + 1, sizeof *argv) : NULL;
    redisReply *reply = NULL;
    if (argv) {
        argv[0] = "MGET";
        for (size_t i = 0; i < count; i++) {
            s_cache_key(keys[i], pk, sks[i]);
            argv[i + 1] = keys[i];
        }
        reply = redis_client_command(self->redis, (int)(count + 1), argv, NULL);
    }
    bool usable = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == count;
    for (size_t i = 0; i < count; i++)
        found[i] = usable && s_cached_item(reply->element[i], &items[i]) == 0;
    if (reply)
        freeReplyObject(reply);
    free(argv);
    free(keys);
}

int tenant_store_get_agents(tenant_store_t *self, const char *tenant,
                            const char *const *accounts, size_t count,
                            tenant_store_agent_fn *each, void *arg, dynamo_error_t *error)
{
    error->status = DYNAMO_OK;
    char pk[96];
    snprintf(pk, sizeof pk, "TENANT#%s", tenant);
    char (*sk_text)[160] = calloc(count ? count : 1, sizeof *sk_text);
    const char **sks = calloc(count ? count : 1, sizeof *sks);
    json_t **items = calloc(count ? count : 1, sizeof *items);
    bool *cached = calloc(count ? count : 1, sizeof *cached);
    json_t *keys = json_array();   /* the misses, for DynamoDB */
    json_t *by_sk = json_object(); /* sk -> item DynamoDB returned */
    json_t *read = NULL;
    int rc = sk_text && sks && items && cached && keys && by_sk ? DYNAMO_OK : DYNAMO_E_OTHER;
    for (size_t i = 0; rc == DYNAMO_OK && i < count; i++) {
        snprintf(sk_text[i], sizeof sk_text[i], "AGENT#%s", accounts[i]);
        sks[i] = sk_text[i];
    }
    if (rc == DYNAMO_OK)
        s_cache_get_many(self, pk, sks, count, items, cached);
    for (size_t i = 0; rc == DYNAMO_OK && i < count; i++)
        if (!cached[i])
            json_array_append_new(keys, json_pack("{s:{s:s}, s:{s:s}}", "pk", "S", pk, "sk",
                                                  "S", sks[i]));
    if (rc == DYNAMO_OK && json_array_size(keys) > 0)
        rc = dynamo_batch_get(self->dynamo, self->table, keys, &read, error);
    size_t n;
    json_t *item;
    json_array_foreach(rc == DYNAMO_OK ? read : NULL, n, item)
    {
        const char *sk = json_string_value(json_object_get(json_object_get(item, "sk"), "S"));
        if (sk)
            json_object_set(by_sk, sk, item);
    }
    /* the misses DynamoDB answered join the cache (absent ones as "absent"), in one pipeline */
    const char **fresh_sks = NULL;
    json_t **fresh_items = NULL;
    size_t fresh = 0;
    if (rc == DYNAMO_OK && json_array_size(keys) > 0 &&
        (fresh_sks = calloc(count, sizeof *fresh_sks)) &&
        (fresh_items = calloc(count, sizeof *fresh_items)))
        for (size_t i = 0; i < count; i++)
            if (!cached[i]) {
                fresh_sks[fresh] = sks[i];
                fresh_items[fresh++] = json_object_get(by_sk, sks[i]);
            }
    s_cache_set_many(self, pk, fresh_sks, fresh_items, fresh);
    for (size_t i = 0; items && cached && i < count; i++) {
        if (!cached[i] && rc != DYNAMO_OK)
            continue; /* neither the cache nor DynamoDB has an answer */
        json_t *agent_item = cached[i] ? items[i] : json_object_get(by_sk, sks[i]);
        tenant_agent_t agent;
        if (agent_item)
            s_agent_from_item(tenant, accounts[i], agent_item, &agent);
        each(accounts[i], agent_item ? &agent : NULL, arg);
    }
    for (size_t i = 0; items && i < count; i++)
        json_decref(items[i]);
    free(fresh_sks);
    free(fresh_items);
    free(sk_text);
    free(sks);
    free(items);
    free(cached);
    json_decref(keys);
    json_decref(by_sk);
    json_decref(read);
    return rc;
}

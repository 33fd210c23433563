/*  jira_tenants.c - see jira_tenants.h. */
#include "jira_tenants.h"
#include "../../common/plog.h"

#include <czmq.h>
#include <openssl/crypto.h>
#include <string.h>

#define S_CACHE_MAX 10000

typedef struct {
    jira_tenant_t tenant;
    int64_t fetched_ms;
} s_entry_t;

struct jira_tenants_t {
    tenant_store_t *store; /* borrowed */
    char app_key[64];
    int64_t ttl_ms;
    bool allow_http;
    zhashx_t *cache;       /* id -> s_entry_t, owns */
};

static void s_entry_free(void **item)
{
    s_entry_t *entry = *item;
    if (entry) {
        if (entry->tenant.secret) {
            OPENSSL_cleanse(entry->tenant.secret, strlen(entry->tenant.secret));
            free(entry->tenant.secret);
        }
        free(entry);
        *item = NULL;
    }
}

jira_tenants_t *jira_tenants_new(tenant_store_t *store, const char *app_key, int64_t ttl_s,
                                 bool allow_http)
{
    jira_tenants_t *self = calloc(1, sizeof *self);
    if (!self || !(self->cache = zhashx_new())) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->cache, s_entry_free);
    self->store = store;
    snprintf(self->app_key, sizeof self->app_key, "%s", app_key);
    self->ttl_ms = ttl_s * 1000;
    self->allow_http = allow_http;
    return self;
}

void jira_tenants_destroy(jira_tenants_t **self_p)
{
    if (self_p && *self_p) {
        zhashx_destroy(&(*self_p)->cache);
        free(*self_p);
        *self_p = NULL;
    }
}

void jira_tenants_forget(jira_tenants_t *self, const char *tenant)
{
    zhashx_delete(self->cache, tenant);
}

/* Builds the signing view of a stored tenant. Returns the entry, or NULL with *code set. */
static s_entry_t *s_entry_from(jira_tenants_t *self, tenant_t *stored, const char **code,
                               char *why, size_t why_size)
{
    if (stored->uninstalled_at_ms) {
        *code = "tenant_uninstalled";
        snprintf(why, why_size, "tenant '%s' uninstalled Parley", stored->id);
        return NULL;
    }
    bool connect = strcmp(stored->auth, "connect") == 0;
    bool https = strncmp(stored->base_url, "https://", 8) == 0;
    bool http = strncmp(stored->base_url, "http://", 7) == 0;
    const char *secret = connect ? stored->shared_secret : stored->api_token;
    if (!secret || (!https && !(http && self->allow_http)) ||
        (!connect && !*stored->api_user)) {
        *code = "tenant_misconfigured";
        snprintf(why, why_size, "tenant '%s' has no usable Jira URL or credentials",
                 stored->id);
        return NULL;
    }
    s_entry_t *entry = calloc(1, sizeof *entry);
    if (!entry)
        return NULL;
    jira_tenant_t *t = &entry->tenant;
    snprintf(t->id, sizeof t->id, "%s", stored->id);
    snprintf(t->base_url, sizeof t->base_url, "%s", stored->base_url);
    size_t length = strlen(t->base_url);
    while (length && t->base_url[length - 1] == '/')
        t->base_url[--length] = '\0';
    t->connect = connect;
    snprintf(t->app_key, sizeof t->app_key, "%s", self->app_key);
    if (connect)
        t->secret = strdup(secret);
    else {
        size_t size = strlen(stored->api_user) + strlen(secret) + 2;
        t->secret = malloc(size);
        if (t->secret)
            snprintf(t->secret, size, "%s:%s", stored->api_user, secret);
    }
    if (!t->secret) {
        free(entry);
        return NULL;
    }
    return entry;
}

const jira_tenant_t *jira_tenants_get(jira_tenants_t *self, const char *tenant,
                                      const char **code, char *why, size_t why_size)
{
    int64_t now = zclock_mono();
    s_entry_t *entry = zhashx_lookup(self->cache, tenant);
    if (entry && now - entry->fetched_ms < self->ttl_ms)
        return &entry->tenant;
    tenant_t stored;
    dynamo_error_t error = {0};
    int rc = tenant_store_get_tenant(self->store, tenant, &stored, &error);
    if (rc == 1 || rc == DYNAMO_E_NOT_FOUND) {
        zhashx_delete(self->cache, tenant);
        *code = "unknown_tenant";
        snprintf(why, why_size, "no tenant '%s'", tenant);
        return NULL;
    }
    if (rc != 0) {
        plog_warn("tenant_read_failed", "tenant=%s status=%d", tenant, rc);
        if (entry)
            return &entry->tenant; /* the store is failing: the last known will do */
        *code = "store_unavailable";
        snprintf(why, why_size, "tenant configuration unavailable; retry shortly");
        return NULL;
    }
    s_entry_t *fresh = s_entry_from(self, &stored, code, why, why_size);
    tenant_clear(&stored);
    if (!fresh) {
        zhashx_delete(self->cache, tenant);
        return NULL;
    }
    fresh->fetched_ms = now;
    if (!entry && zhashx_size(self->cache) >= S_CACHE_MAX)
        zhashx_purge(self->cache);
    zhashx_update(self->cache, tenant, fresh);
    return &fresh->tenant;
}

int jira_tenants_issue_type(jira_tenants_t *self, const char *tenant, const char *project,
                            char *out, size_t size, bool *known)
{
    snprintf(out, size, "Support");
    *known = false;
    tenant_project_t config;
    dynamo_error_t error = {0};
    int rc = tenant_store_get_project(self->store, tenant, project, &config, &error);
    if (rc == 0) {
        *known = true;
        if (*config.issue_type)
            snprintf(out, size, "%s", config.issue_type);
        tenant_project_clear(&config);
        return 0;
    }
    return rc == 1 || rc == DYNAMO_E_NOT_FOUND ? 0 : -1;
}

/*  presence_availability.c - see presence_availability.h. */
#include "presence_availability.h"
#include "../../common/plog.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

#define S_AGENTS_MAX 1000        /* online agents of one project looked at */
#define S_CACHE_MAX 20000        /* cached configurations before the cache starts over */
#define S_STORE_BACKOFF_MS 5000  /* after a failed read, DynamoDB is left alone this long */

/* One configuration item as the evaluator needs it. */
typedef struct {
    int64_t fetched_ms;
    bool known;            /* the item exists in the store */
    char visibility[16];   /* projects only */
    schedule_t *schedule;  /* owned; NULL when there is none (or it did not parse) */
} s_entry_t;

struct presence_evaluator_t {
    presence_store_t *store;   /* borrowed */
    tenant_store_t *tenants;   /* borrowed */
    schedule_zones_t *zones;   /* borrowed */
    int64_t config_ttl_ms;
    int64_t clock_offset_s;
    int64_t store_down_until_ms;
    zhashx_t *cache;           /* "a|tenant|account" / "p|tenant|project" -> s_entry_t, owns */
};

static void s_entry_free(void **item)
{
    s_entry_t *entry = *item;
    if (entry) {
        schedule_destroy(&entry->schedule);
        free(entry);
        *item = NULL;
    }
}

presence_evaluator_t *presence_evaluator_new(presence_store_t *store, tenant_store_t *tenants,
                                             schedule_zones_t *zones, int64_t config_ttl_s,
                                             int64_t clock_offset_s)
{
    presence_evaluator_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->tenants = tenants;
    self->zones = zones;
    self->config_ttl_ms = config_ttl_s * 1000;
    self->clock_offset_s = clock_offset_s;
    self->cache = zhashx_new();
    if (!self->cache) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->cache, s_entry_free);
    return self;
}

void presence_evaluator_destroy(presence_evaluator_t **self_p)
{
    if (self_p && *self_p) {
        zhashx_destroy(&(*self_p)->cache);
        free(*self_p);
        *self_p = NULL;
    }
}

/* Parses a stored schedule; a malformed one (the store was written by hand) is logged and
   treated as absent. */
static schedule_t *s_parse(presence_evaluator_t *self, const char *what, const char *text)
{
    if (!*text)
        return NULL;
    char why[200];
    schedule_t *schedule = schedule_new(self->zones, text, why, sizeof why);
    if (!schedule)
        plog_warn("schedule_unusable", "item=\"%s\" reason=\"%s\"", what, why);
    return schedule;
}

/* Reads one item from the store into a new entry. Returns the entry, or NULL when the store
   failed (a missing table counts as "no item"). */
static s_entry_t *s_fetch(presence_evaluator_t *self, bool agent, const char *tenant,
                          const char *name, const char *key)
{
    s_entry_t *entry = calloc(1, sizeof *entry);
    if (!entry)
        return NULL;
    dynamo_error_t error = {0};
    int rc;
    if (agent) {
        tenant_agent_t item;
        rc = tenant_store_get_agent(self->tenants, tenant, name, &item, &error);
        if (rc == 0)
            entry->schedule = s_parse(self, key, item.schedule);
    } else {
        tenant_project_t item;
        rc = tenant_store_get_project(self->tenants, tenant, name, &item, &error);
        if (rc == 0) {
            snprintf(entry->visibility, sizeof entry->visibility, "%s", item.visibility);
            entry->schedule = s_parse(self, key, item.visibility_schedule);
            tenant_project_clear(&item);
        }
    }
    if (rc < 0 && rc != DYNAMO_E_NOT_FOUND) {
        plog_warn("config_read_failed", "item=\"%s\" status=%s message=\"%s\"", key,
                  dynamo_status_name(error.status), error.message);
        free(entry);
        return NULL;
    }
    entry->known = rc == 0;
    return entry;
}

/* Puts a freshly read entry in the cache under key (purging it first when full). */
static void s_cache_put(presence_evaluator_t *self, const char *key, s_entry_t *fresh,
                        int64_t now_ms)
{
    fresh->fetched_ms = now_ms;
    if (!zhashx_lookup(self->cache, key) && zhashx_size(self->cache) >= S_CACHE_MAX)
        zhashx_purge(self->cache);
    zhashx_update(self->cache, key, fresh);
}

/* Returns the configuration item, fresh enough or the last one known; NULL when nothing is
   known (the store is failing). The entry stays owned by the cache. */
static const s_entry_t *s_lookup(presence_evaluator_t *self, bool agent, const char *tenant,
                                 const char *name, int64_t now_ms)
{
    char key[2 * PROTO_NAME_MAX + 8];
    snprintf(key, sizeof key, "%c|%s|%s", agent ? 'a' : 'p', tenant, name);
    s_entry_t *entry = zhashx_lookup(self->cache, key);
    if (entry && now_ms - entry->fetched_ms < self->config_ttl_ms)
        return entry;
    if (now_ms < self->store_down_until_ms)
        return entry;
    s_entry_t *fresh = s_fetch(self, agent, tenant, name, key);
    if (!fresh) {
        self->store_down_until_ms = now_ms + S_STORE_BACKOFF_MS;
        return entry;
    }
    s_cache_put(self, key, fresh, now_ms);
    return fresh;
}

/* What s_refresh_agents' callback needs. */
typedef struct {
    presence_evaluator_t *self;
    const char *tenant;
    int64_t now_ms;
} s_refresh_t;

static void s_on_agent_read(const char *account, const tenant_agent_t *agent, void *arg)
{
    s_refresh_t *refresh = arg;
    char key[2 * PROTO_NAME_MAX + 8];
    snprintf(key, sizeof key, "a|%s|%s", refresh->tenant, account);
    s_entry_t *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return; /* s_lookup tries again alone */
    fresh->known = agent != NULL;
    if (agent)
        fresh->schedule = s_parse(refresh->self, key, agent->schedule);
    s_cache_put(refresh->self, key, fresh, refresh->now_ms);
}

/* Reads the configuration of the agents (a JSON array of accounts) whose cached entry is
   missing or old in one go (tenant_store_get_agents: an MGET and a BatchGetItem per 100),
   so that evaluating a project of many agents costs a round trip or two, not one each,
   which the event loop would wait for in turn. */
static void s_refresh_agents(presence_evaluator_t *self, const char *tenant, json_t *agents,
                             int64_t now_ms)
{
    if (now_ms < self->store_down_until_ms)
        return;
    const char **stale = calloc(json_array_size(agents) + 1, sizeof *stale);
    size_t count = 0, i;
    json_t *account;
    char key[2 * PROTO_NAME_MAX + 8];
    json_array_foreach(stale ? agents : NULL, i, account)
    {
        const char *name = json_string_value(account);
        if (!name)
            continue;
        snprintf(key, sizeof key, "a|%s|%s", tenant, name);
        s_entry_t *entry = zhashx_lookup(self->cache, key);
        if (!entry || now_ms - entry->fetched_ms >= self->config_ttl_ms)
            stale[count++] = name;
    }
    dynamo_error_t error = {0};
    s_refresh_t refresh = {self, tenant, now_ms};
    if (count && tenant_store_get_agents(self->tenants, tenant, stale, count, s_on_agent_read,
                                         &refresh, &error) != 0) {
        plog_warn("config_read_failed", "item=\"agents of %s\" status=%s message=\"%s\"",
                  tenant, dynamo_status_name(error.status), error.message);
        self->store_down_until_ms = now_ms + S_STORE_BACKOFF_MS;
    }
    free(stale);
}

/* Lowers *next (a shifted-clock instant, 0 = none yet) to candidate when it is sooner. */
static void s_sooner(time_t *next, time_t candidate)
{
    if (candidate > 0 && (*next == 0 || candidate < *next))
        *next = candidate;
}

int presence_evaluator_run(presence_evaluator_t *self, const char *tenant, const char *project,
                           const char *customer_zone, int64_t now_ms,
                           presence_availability_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *agents = presence_store_online_agents(self->store, tenant, project, S_AGENTS_MAX);
    if (!agents)
        return -1;
    time_t now = (time_t)(now_ms / 1000 + self->clock_offset_s);
    time_t next = 0;
    s_refresh_agents(self, tenant, agents, now_ms);
    size_t i;
    json_t *account;
    json_array_foreach(agents, i, account)
    {
        out->agents_online++;
        const s_entry_t *entry = s_lookup(self, true, tenant, json_string_value(account), now_ms);
        const schedule_t *schedule = entry && entry->known ? entry->schedule : NULL;
        if (!schedule) {
            out->available = true;
            continue;
        }
        if (schedule_is_open(schedule, now) == 1)
            out->available = true;
        s_sooner(&next, schedule_next_change(schedule, now));
    }
    json_decref(agents);

    const s_entry_t *config = s_lookup(self, false, tenant, project, now_ms);
    const char *mode = config && config->known && tenant_visibility_valid(config->visibility)
                           ? config->visibility
                           : "when_online";
    snprintf(out->visibility, sizeof out->visibility, "%s", mode);
    const schedule_t *window = config && config->known ? config->schedule : NULL;
    if (strcmp(mode, "when_online") == 0)
        out->visible = out->available;
    else if (strcmp(mode, "always") == 0 || !window)
        out->visible = 1; /* a schedule mode without a usable schedule fails open (logged) */
    else if (strcmp(mode, "schedule") == 0) {
        out->visible = schedule_is_open(window, now) == 1;
        s_sooner(&next, schedule_next_change(window, now));
    } else if (customer_zone) {
        out->visible = schedule_is_open_in_zone(window, customer_zone, now) == 1;
        s_sooner(&next, schedule_next_change_in_zone(window, customer_zone, now));
    } else
        out->visible = -1;
    out->next_change_ms = next ? ((int64_t)next - self->clock_offset_s) * 1000 : 0;
    return 0;
}

void presence_availability_state(const presence_availability_t *result, char *out, size_t size)
{
    if (strcmp(result->visibility, "customer_local") == 0)
        snprintf(out, size, "%d|%s", result->available ? 1 : 0, result->visibility);
    else
        snprintf(out, size, "%d|%s|%d", result->available ? 1 : 0, result->visibility,
                 result->visible);
}

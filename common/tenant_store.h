/*  tenant_store.h - tenants, their projects' chat configuration and their agents, in DynamoDB
    (items and attributes as in common/DATA-MODEL.md), with secrets sealed at rest.

    Typed structs in, typed structs out: callers never see DynamoDB's attribute-value JSON.
    Secret fields are plain text in the structs (heap strings the struct owns; release them
    with the _clear functions, which wipe them) and sealed in the table. Reads go through a
    short Redis cache when one is given: the cache holds the DynamoDB item as stored, so
    secrets stay sealed there too; writes refresh it. Borrows a dynamo_t, a secrets_t and the
    optional redis_client_t; blocking like them; one store per thread. */
#ifndef TENANT_STORE_H
#define TENANT_STORE_H

#include "dynamo.h"
#include "redis_client.h"
#include "secrets.h"

#include <stdbool.h>
#include <stdint.h>

#define TENANT_NAME_MAX 63
#define TENANT_URL_MAX 255
#define TENANT_PROJECTS_MAX 32
#define TENANT_SCHEDULE_MAX 511

typedef struct {
    char id[TENANT_NAME_MAX + 1];      /* Parley's tenant id (Connect clientKey or chosen) */
    char base_url[TENANT_URL_MAX + 1]; /* https://example.atlassian.net */
    char auth[16];                     /* "connect" or "token" */
    char client_key[128];              /* Atlassian Connect clientKey */
    char *shared_secret;               /* Connect shared secret (owned, may be NULL) */
    char api_user[128];                /* API-token auth: the user's e-mail */
    char *api_token;                   /* API token (owned, may be NULL) */
    int64_t installed_at_ms;
    int64_t uninstalled_at_ms; /* 0 while installed */
} tenant_t;

typedef struct {
    char tenant[TENANT_NAME_MAX + 1];
    char project[TENANT_NAME_MAX + 1];    /* Jira project key */
    char issue_type[TENANT_NAME_MAX + 1]; /* issue type for conversations */
    char *secret_key;                     /* signs widget auto-login tokens (owned) */
    bool allow_anonymous;
    char visibility[16]; /* always, schedule, customer_local, when_online */
    char visibility_schedule[TENANT_SCHEDULE_MAX + 1];
} tenant_project_t;

typedef struct {
    char tenant[TENANT_NAME_MAX + 1];
    char account[128]; /* Jira account id */
    char projects[TENANT_PROJECTS_MAX][TENANT_NAME_MAX + 1];
    uint32_t project_count;
    char schedule[TENANT_SCHEDULE_MAX + 1];
} tenant_agent_t;

/* Wipe and free the secret strings of a struct (not the struct). */
void tenant_clear(tenant_t *tenant);
void tenant_project_clear(tenant_project_t *project);

/* True when visibility is one of the four modes. */
bool tenant_visibility_valid(const char *visibility);

typedef struct tenant_store_t tenant_store_t;

/* Returns a store on table, or NULL when memory runs out. redis may be NULL (no cache);
   cache_ttl_s is how long a cached item is used. secrets may be NULL for a process that needs
   no secrets (e.g. presence reading schedules): its gets leave the secret fields NULL and its
   puts of secret fields fail. All pointers are borrowed. */
tenant_store_t *tenant_store_new(dynamo_t *dynamo, secrets_t *secrets, const char *table,
                                 redis_client_t *redis, int64_t cache_ttl_s);
void tenant_store_destroy(tenant_store_t **self_p);

/* Each put writes the whole item; each get returns 0 and fills *out, 1 when there is no such
   item, or a negative dynamo_status_t (-100 when a sealed value does not open: wrong
   PARLEY_SECRETS_KEY, or tampering). A cache that fails is skipped, never an error. */
int tenant_store_put_tenant(tenant_store_t *self, const tenant_t *tenant, dynamo_error_t *error);
int tenant_store_get_tenant(tenant_store_t *self, const char *id, tenant_t *out,
                            dynamo_error_t *error);
int tenant_store_put_project(tenant_store_t *self, const tenant_project_t *project,
                             dynamo_error_t *error);
int tenant_store_get_project(tenant_store_t *self, const char *tenant, const char *project,
                             tenant_project_t *out, dynamo_error_t *error);
int tenant_store_put_agent(tenant_store_t *self, const tenant_agent_t *agent,
                           dynamo_error_t *error);
int tenant_store_get_agent(tenant_store_t *self, const char *tenant, const char *account,
                           tenant_agent_t *out, dynamo_error_t *error);

/* What tenant_store_get_agents found of one account: agent (borrowed for the call) or NULL
   when the account has no item. */
typedef void(tenant_store_agent_fn)(const char *account, const tenant_agent_t *agent, void *arg);

/* Reads the agent items of count accounts of tenant at once: one MGET of the cache, then
   BatchGetItem (100 a request) for what it lacked, which then joins the cache; each(account,
   ...) is called once per account read. Returns 0, or a negative dynamo_status_t when
   DynamoDB failed (the accounts answered from the cache were called back all the same; the
   others were not). For evaluating a project's many agents without a round trip each. */
int tenant_store_get_agents(tenant_store_t *self, const char *tenant,
                            const char *const *accounts, size_t count,
                            tenant_store_agent_fn *each, void *arg, dynamo_error_t *error);

#define TENANT_STORE_SEALED_BROKEN (-100)

#endif

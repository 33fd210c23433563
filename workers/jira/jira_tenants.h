/*  jira_tenants.h - which Jira a tenant is and how to sign calls to it, from the store
    (tenant_store: DynamoDB behind a Redis cache), kept a short while in the process.

    A tenant whose Connect app was uninstalled is refused; so is a plain-http base URL unless
    allow_http is set (the local Jira sandbox). Owns its cache (secrets wiped on eviction);
    borrows the tenant_store; one thread. */
#ifndef JIRA_TENANTS_H
#define JIRA_TENANTS_H

#include "../../common/tenant_store.h"
#include "jira_client.h"

typedef struct jira_tenants_t jira_tenants_t;

jira_tenants_t *jira_tenants_new(tenant_store_t *store, const char *app_key, int64_t ttl_s,
                                 bool allow_http);
void jira_tenants_destroy(jira_tenants_t **self_p);

/* Returns the tenant (borrowed from the cache: valid until the next call), or NULL with a
   machine-readable *code ("unknown_tenant", "tenant_uninstalled", "store_unavailable",
   "tenant_misconfigured") and a reason for the client in why. */
const jira_tenant_t *jira_tenants_get(jira_tenants_t *self, const char *tenant,
                                      const char **code, char *why, size_t why_size);

/* The project's issue type for conversations into out (default "Support"); 0, or -1 when the
   store failed (out keeps the default). *known says whether the project is configured. */
int jira_tenants_issue_type(jira_tenants_t *self, const char *tenant, const char *project,
                            char *out, size_t size, bool *known);

/* Forgets a tenant (after an install or uninstall). */
void jira_tenants_forget(jira_tenants_t *self, const char *tenant);

#endif

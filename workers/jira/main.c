/*  main.c - parley-jira: conversations persisted in Jira. Configuration, wiring and stop.

    Handlers (jira_conversations.c, jira_identity.c) run on the worker's loop and keep many
    Jira calls in flight through jira_client; DynamoDB and Redis records are small blocking
    calls made on the same thread. */
#include "../../common/plog.h"
#include "../../common/secrets.h"
#include "../../common/signals.h"
#include "jira_service.h"

#include <stdlib.h>
#include <unistd.h>

static void s_free_string(void **item)
{
    free(*item);
    *item = NULL;
}

int main(int argc, char **argv)
{
    int signal_fd = signals_open();
    if (signal_fd < 0) {
        perror("signalfd");
        return 1;
    }
    jira_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.worker.link},
        {"Worker runtime", worker_config_options, worker_config_option_count, &config.worker},
        {"Jira", jira_config_options, jira_config_option_count, &config},
        {"Jira calls", jira_client_config_options, jira_client_config_option_count,
         &config.client},
        {"Redis", redis_client_config_options, redis_client_config_option_count, &config.redis},
        {"DynamoDB", dynamo_config_options, dynamo_config_option_count, &config.dynamo},
    };
    size_t table_count = sizeof tables / sizeof tables[0];
    int rc = config_load(tables, table_count, argc, argv,
                         "parley-jira - conversations as Jira issues, messages as comments");
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    plog_level_t level = PLOG_INFO;
    plog_level_parse(config.worker.log_level, &level);
    plog_init("jira", level);
    config_log(tables, table_count);
    srandom((unsigned)zclock_time() ^ (unsigned)getpid());

    char why[256];
    secrets_t *secrets = secrets_new(config.secrets_key, why, sizeof why);
    if (!secrets) {
        plog_error("startup_failed", "reason=\"PARLEY_SECRETS_KEY: %s\"", why);
        return 2;
    }
    redis_client_t *redis = redis_client_new(&config.redis, why, sizeof why);
    dynamo_t *dynamo = dynamo_new(&config.dynamo);
    dynamo_error_t error = {0};
    if (!redis || !dynamo) {
        plog_error("startup_failed", "reason=\"%s\"", redis ? "dynamo client" : why);
        rc = 2;
    } else if (dynamo_ensure_table(dynamo, config.table, "expires_at", &error) != 0) {
        plog_error("startup_failed", "reason=\"DynamoDB table %s: %s\"", config.table,
                   error.message);
        rc = 2;
    }
    tenant_store_t *store = NULL;
    jira_service_t service = {.config = &config};
    if (rc == 0) {
        store = tenant_store_new(dynamo, secrets, config.table, redis, config.config_cache_ttl_s);
        service.worker = worker_new(&config.worker, "jira");
        service.records = jira_records_new(redis, dynamo, config.table);
        service.tenants = store ? jira_tenants_new(store, config.app_key,
                                                   config.config_cache_ttl_s,
                                                   config.allow_http == 1)
                                : NULL;
        service.client = service.worker ? jira_client_new(service.worker, &config.client) : NULL;
        service.tenants_store = store;
        service.http = service.worker ? http_multi_new(worker_loop(service.worker), 4) : NULL;
        service.install_keys = zhashx_new();
        if (service.install_keys)
            zhashx_set_destructor(service.install_keys, s_free_string);
        service.visitor_budgets = zhashx_new();
        if (service.visitor_budgets)
            zhashx_set_destructor(service.visitor_budgets, s_free_string);
        if (!service.records || !service.tenants || !service.client || !service.http ||
            !service.install_keys || !service.visitor_budgets) {
            plog_error("startup_failed", "reason=\"out of memory\"");
            rc = 1;
        }
    }
    if (rc == 0) {
        worker_t *w = service.worker;
        service.messages_written = worker_counter(w, "messages_written");
        service.duplicates = worker_counter(w, "duplicates");
        service.lookups = worker_counter(w, "lookups");
        service.conversations_started = worker_counter(w, "conversations_started");
        service.identities = worker_counter(w, "identities_resolved");
        service.bad_requests = worker_counter(w, "bad_requests");
        service.store_errors = worker_counter(w, "store_errors");
        service.jira_failures = worker_counter(w, "jira_failures");
        if (jira_conversations_register(&service) != 0 || jira_identity_register(&service) != 0 ||
            jira_inbound_register(&service) != 0 || jira_session_register(&service) != 0)
            rc = 1;
        else
            rc = worker_run(w, signal_fd);
    }
    jira_client_destroy(&service.client); /* before the worker: callbacks answer requests */
    http_multi_destroy(&service.http);
    zhashx_destroy(&service.install_keys);
    zhashx_destroy(&service.visitor_budgets);
    worker_destroy(&service.worker);
    jira_tenants_destroy(&service.tenants);
    jira_records_destroy(&service.records);
    tenant_store_destroy(&store);
    dynamo_destroy(&dynamo);
    redis_client_destroy(&redis);
    secrets_destroy(&secrets);
    zsys_shutdown();
    return rc;
}

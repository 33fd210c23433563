/*  jira_config.c - the jira worker's own options (see common/config.h). */
#include "jira_config.h"

#define T jira_config_t
const config_option_t jira_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_DYNAMO_TABLE", T, table, "parley", "DynamoDB table name"),
    CONFIG_SECRET_OPTION("PARLEY_SECRETS_KEY", T, secrets_key, "",
                         "32-byte key (base64) that opens secrets sealed at rest"),
    CONFIG_STR_OPTION("PARLEY_APP_KEY", T, app_key, "parley-chat",
                      "Atlassian Connect app key (the iss of Parley's JWTs)"),
    CONFIG_STR_OPTION("PARLEY_APP_BASE_URL", T, app_base_url, "http://127.0.0.1:8080",
                      "Parley's public base URL (the gateway), as in the Connect descriptor"),
    CONFIG_STR_OPTION("PARLEY_CONNECT_INSTALL_KEYS_URL", T, install_keys_url,
                      "https://connect-install-keys.atlassian.com",
                      "service that serves the public keys of Connect lifecycle JWTs"),
    CONFIG_INT_OPTION("PARLEY_JIRA_ALLOW_HTTP", T, allow_http, "0", 0, 1,
                      "1: tenants' Jira may be plain http (the local sandbox); 0: https only"),
    CONFIG_INT_OPTION("PARLEY_CONFIG_CACHE_TTL_S", T, config_cache_ttl_s, "30", 1, 3600,
                      "tenant configuration is cached this long (s)"),
    CONFIG_INT_OPTION("PARLEY_JIRA_VISITORS_PER_MIN", T, visitors_per_min, "60", 1, 1000000,
                      "new anonymous visitors (each a Jira customer) one replica lets a tenant "
                      "make per minute; more are refused rate_limited"),
};
#undef T
const size_t jira_config_option_count = sizeof jira_config_options / sizeof jira_config_options[0];

#define T jira_client_config_t
const config_option_t jira_client_config_options[] = {
    CONFIG_INT_OPTION("PARLEY_JIRA_TIMEOUT_MS", T, timeout_ms, "10000", 100, 120000,
                      "time limit of one Jira call attempt (ms)"),
    CONFIG_INT_OPTION("PARLEY_JIRA_RETRY_BASE_MS", T, retry_base_ms, "100", 1, 60000,
                      "first retry delay bound for 5xx and network errors (ms); doubles"),
    CONFIG_INT_OPTION("PARLEY_JIRA_RETRY_MAX_MS", T, retry_max_ms, "5000", 1, 600000,
                      "largest retry delay (ms)"),
    CONFIG_INT_OPTION("PARLEY_JIRA_TENANT_CONCURRENCY", T, per_tenant_max, "8", 1, 1000,
                      "calls at one tenant's Jira at once; more wait their turn"),
    CONFIG_INT_OPTION("PARLEY_JIRA_TENANT_QUEUE_MAX", T, queue_max, "1000", 1, 1000000,
                      "calls waiting for one tenant's Jira; more are refused"),
};
#undef T
const size_t jira_client_config_option_count =
    sizeof jira_client_config_options / sizeof jira_client_config_options[0];

/*  presence_config.c - the presence worker's own options (see common/config.h). */
#include "presence_config.h"

#define T presence_config_t
const config_option_t presence_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_DYNAMO_TABLE", T, table, "parley", "DynamoDB table name"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_FLUSH_MS", T, flush_ms, "10000", 100, 3600000,
                      "write-behind interval: Redis -> DynamoDB (ms)"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_FLUSH_BATCH", T, flush_batch, "500", 1, 100000,
                      "dirty entries taken from Redis per flush step"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_GRACE_MS", T, grace_ms, "60000", 1000, 86400000,
                      "a socket whose last seen stops moving this long is closed (ms)"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_FLUSHER_LEASE_MS", T, flusher_lease_ms, "30000", 1000,
                      3600000, "a flusher silent this long has its entries taken back (ms)"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_ROW_TTL_S", T, row_ttl_s, "86400", 60, 31536000,
                      "DynamoDB TTL of socket rows after their last update (s)"),
    CONFIG_INT_OPTION("PARLEY_CONFIG_CACHE_TTL_S", T, config_cache_ttl_s, "30", 1, 3600,
                      "configuration (projects, agents' schedules) is cached this long (s)"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_AVAILABILITY_RECHECK_S", T, availability_recheck_s, "60",
                      1, 86400,
                      "projects with agents online are re-evaluated at least this often (s)"),
    CONFIG_INT_OPTION("PARLEY_PRESENCE_SCHEDULE_CLOCK_OFFSET_S", T, schedule_clock_offset_s, "0",
                      -3153600000LL, 3153600000LL,
                      "shifts the instant schedules are evaluated at (s; tests and drills only)"),
};
#undef T
const size_t presence_config_option_count =
    sizeof presence_config_options / sizeof presence_config_options[0];

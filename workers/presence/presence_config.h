/*  presence_config.h - the presence worker's configuration: its own options plus the worker
    runtime's, Redis's and DynamoDB's tables. */
#ifndef PRESENCE_CONFIG_H
#define PRESENCE_CONFIG_H

#include "../../common/dynamo.h"
#include "../../common/redis_client.h"
#include "../../common/worker.h"

typedef struct {
    worker_config_t worker;
    redis_client_config_t redis;
    dynamo_config_t dynamo;
    char table[64];           /* DynamoDB table */
    int64_t flush_ms;         /* write-behind interval */
    int64_t flush_batch;      /* dirty entries taken per step */
    int64_t grace_ms;         /* a socket not heard from this long is closed */
    int64_t flusher_lease_ms; /* a flusher silent this long has its entries taken back */
    int64_t row_ttl_s;        /* DynamoDB TTL of closed sockets' rows */
    int64_t config_cache_ttl_s;     /* how long configuration read from the store is used */
    int64_t availability_recheck_s; /* projects with agents online are re-evaluated this often */
    int64_t schedule_clock_offset_s; /* shifts the clock schedules are evaluated at (tests) */
} presence_config_t;

extern const config_option_t presence_config_options[];
extern const size_t presence_config_option_count;

#endif

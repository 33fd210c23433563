/*  main.c - parley-presence: who is online. Configuration, wiring and stop.

    The request loop (worker runtime + presence_handlers) writes Redis at once; the flusher
    actor writes DynamoDB behind it. Its figures come up the actor pipe and ride in the
    worker's heartbeats to the broker's /stats. */
#include "../../common/plog.h"
#include "../../common/signals.h"
#include "presence_config.h"
#include "presence_flusher.h"
#include "presence_handlers.h"

#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    worker_t *worker;
    uint64_t *rows_written, *batches, *flush_errors, *reclaimed, *flush_ms, *dirty, *ratio;
    uint64_t *updates;
} s_main_t;

/* Copies the flusher's figures into the heartbeat counters. */
static int s_on_flusher(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    s_main_t *m = arg;
    char *line = zstr_recv(pipe);
    unsigned long long rows, batches, errors, reclaimed;
    long long took;
    long dirty;
    if (line && sscanf(line, "STATS %llu %llu %llu %llu %lld %ld", &rows, &batches, &errors,
                       &reclaimed, &took, &dirty) == 6) {
        *m->rows_written = rows;
        *m->batches = batches;
        *m->flush_errors = errors;
        *m->reclaimed = reclaimed;
        *m->flush_ms = (uint64_t)(took < 0 ? 0 : took);
        *m->dirty = (uint64_t)(dirty < 0 ? 0 : dirty);
        *m->ratio = rows ? *m->updates * 1000 / rows : 0;
    }
    zstr_free(&line);
    return 0;
}

int main(int argc, char **argv)
{
    int signal_fd = signals_open();
    if (signal_fd < 0) {
        perror("signalfd");
        return 1;
    }
    presence_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.worker.link},
        {"Worker runtime", worker_config_options, worker_config_option_count, &config.worker},
        {"Presence", presence_config_options, presence_config_option_count, &config},
        {"Redis", redis_client_config_options, redis_client_config_option_count, &config.redis},
        {"DynamoDB", dynamo_config_options, dynamo_config_option_count, &config.dynamo},
    };
    size_t table_count = sizeof tables / sizeof tables[0];
    int rc = config_load(tables, table_count, argc, argv,
                         "parley-presence - websockets, agents online, last seen (Redis, "
                         "written behind to DynamoDB)");
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    plog_level_t level = PLOG_INFO;
    plog_level_parse(config.worker.log_level, &level);
    plog_init("presence", level);
    config_log(tables, table_count);
    srandom((unsigned)zclock_time() ^ (unsigned)getpid());

    char why[256];
    redis_client_t *redis = redis_client_new(&config.redis, why, sizeof why);
    if (!redis) {
        plog_error("startup_failed", "reason=\"%s\"", why);
        return 2;
    }
    /* Configuration reads happen in the request loop: one short attempt each (the evaluator
       falls back to what it knew when the store fails). */
    dynamo_config_t config_reads = config.dynamo;
    if (config_reads.timeout_ms > 1000)
        config_reads.timeout_ms = 1000;
    config_reads.retry_max = 1;
    dynamo_t *config_dynamo = dynamo_new(&config_reads);
    tenant_store_t *tenants =
        config_dynamo ? tenant_store_new(config_dynamo, NULL, config.table, redis,
                                         config.config_cache_ttl_s)
                      : NULL;
    schedule_zones_t *zones = schedule_zones_new(NULL, why, sizeof why);
    if (!zones)
        plog_error("startup_failed", "reason=\"%s\"", why);
    presence_handlers_t handlers = {.config = &config, .zones = zones};
    handlers.store = presence_store_new(redis);
    presence_evaluator_t *evaluator =
        handlers.store && tenants && zones
            ? presence_evaluator_new(handlers.store, tenants, zones, config.config_cache_ttl_s,
                                     config.schedule_clock_offset_s)
            : NULL;
    handlers.worker = worker_new(&config.worker, "presence");
    presence_announcer_t announcer = {.worker = handlers.worker,
                                      .store = handlers.store,
                                      .evaluator = evaluator,
                                      .recheck_ms = config.availability_recheck_s * 1000};
    handlers.announcer = &announcer;
    s_main_t m = {.worker = handlers.worker};
    zactor_t *flusher = NULL;
    presence_flusher_args_t flusher_args = {&config, NULL};
    if (handlers.worker && evaluator && presence_announcer_register(&announcer) == 0 &&
        presence_handlers_register(&handlers) == 0) {
        flusher_args.instance = worker_instance(handlers.worker);
        flusher = zactor_new(presence_flusher_actor, &flusher_args);
    }
    if (!flusher) {
        plog_error("startup_failed", NULL);
        rc = 1;
    } else {
        m.rows_written = worker_counter(m.worker, "rows_written");
        m.batches = worker_counter(m.worker, "flush_batches");
        m.flush_errors = worker_counter(m.worker, "flush_errors");
        m.reclaimed = worker_counter(m.worker, "entries_reclaimed");
        m.flush_ms = worker_counter(m.worker, "flush_duration_ms");
        m.dirty = worker_counter(m.worker, "dirty_entries");
        m.ratio = worker_counter(m.worker, "coalescing_ratio_milli");
        m.updates = handlers.updates;
        zloop_reader(worker_loop(m.worker), (zsock_t *)flusher, s_on_flusher, &m);
        rc = worker_run(handlers.worker, signal_fd);
        zloop_reader_end(worker_loop(m.worker), (zsock_t *)flusher);
    }
    zactor_destroy(&flusher); /* flushes one last time */
    worker_destroy(&handlers.worker);
    presence_evaluator_destroy(&evaluator);
    schedule_zones_destroy(&zones);
    tenant_store_destroy(&tenants);
    dynamo_destroy(&config_dynamo);
    presence_store_destroy(&handlers.store);
    redis_client_destroy(&redis);
    zsys_shutdown();
    return rc;
}

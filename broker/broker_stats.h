/*  broker_stats.h - renders the broker's state and the counters peers carry in heartbeats, as
    JSON (/stats) and as Prometheus text exposition format 0.0.4 (/metrics). */
#ifndef BROKER_STATS_H
#define BROKER_STATS_H

#include <stddef.h>

typedef struct broker_t broker_t;

/* Each returns a new NUL-terminated document the caller frees, or NULL when memory runs out. */
char *broker_stats_json(broker_t *broker);
char *broker_stats_prometheus(broker_t *broker);

/* True while the broker serves normally (not draining). */
int broker_stats_healthy(broker_t *broker);

#endif

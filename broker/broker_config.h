/*  broker_config.h - the broker's configuration struct and its option table. */
#ifndef BROKER_CONFIG_H
#define BROKER_CONFIG_H

#include "../common/config.h"

typedef struct {
    char endpoint[256];        /* ROUTER for clients and workers */
    char events_in[256];       /* XSUB: publishers connect here */
    char events_out[256];      /* XPUB: subscribers connect here */
    char stats_address[128];   /* HTTP host:port for /stats, /metrics, /healthz */
    int64_t heartbeat_ms;      /* interval between heartbeats, both ways */
    int64_t liveness;          /* heartbeats missed before a peer counts as dead */
    int64_t queue_max;         /* requests waiting per service before "overloaded" */
    int64_t requests_max;      /* requests held in all, queued or in flight */
    int64_t max_frame_bytes;   /* largest accepted message, all frames together */
    int64_t max_timeout_ms;    /* cap on a request's deadline */
    int64_t no_replica_grace_ms; /* how long a service may have no replica before no_service */
    int64_t max_services;      /* distinct service names */
    int64_t max_peers;         /* workers + clients */
    int64_t drain_timeout_ms;  /* on SIGTERM, wait this long for in-flight replies */
    int64_t http_max_connections;
    char log_level[16];
} broker_config_t;

extern const config_option_t broker_config_options[];
extern const size_t broker_config_option_count;

#endif

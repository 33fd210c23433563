/*  broker_config.c - every broker option, declared once (see common/config.h). */
#include "broker_config.h"

#include <stdint.h>

#define T broker_config_t
const config_option_t broker_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_BROKER_ENDPOINT", T, endpoint, "tcp://127.0.0.1:5555",
                      "ZeroMQ endpoint the broker binds for clients and workers"),
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_IN", T, events_in, "tcp://127.0.0.1:5556",
                      "endpoint for event publishers (XSUB)"),
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_OUT", T, events_out, "tcp://127.0.0.1:5557",
                      "endpoint for event subscribers (XPUB)"),
    CONFIG_STR_OPTION("PARLEY_BROKER_STATS_ADDRESS", T, stats_address, "127.0.0.1:8090",
                      "host:port of the HTTP stats endpoint (/stats, /metrics, /healthz)"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_MS", T, heartbeat_ms, "1000", 10, 60000,
                      "heartbeat interval in milliseconds, both ways"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_LIVENESS", T, liveness, "3", 1, 100,
                      "heartbeats missed before a peer counts as dead"),
    CONFIG_INT_OPTION("PARLEY_BROKER_QUEUE_MAX", T, queue_max, "10000", 1, 10000000,
                      "requests waiting per service; more are answered 'overloaded'"),
    CONFIG_INT_OPTION("PARLEY_BROKER_REQUESTS_MAX", T, requests_max, "100000", 1, 100000000,
                      "requests held in all (queued and in flight); more are 'overloaded'"),
    CONFIG_INT_OPTION("PARLEY_MAX_FRAME_BYTES", T, max_frame_bytes, "1048576", 1024,
                      268435456, "largest message accepted, all frames together, in bytes"),
    CONFIG_INT_OPTION("PARLEY_BROKER_MAX_TIMEOUT_MS", T, max_timeout_ms, "60000", 1, 3600000,
                      "cap on any request's deadline, in milliseconds"),
    CONFIG_INT_OPTION("PARLEY_BROKER_NO_REPLICA_GRACE_MS", T, no_replica_grace_ms, "3000", 0,
                      3600000,
                      "a service without replicas this long answers 'no_service' (ms)"),
    CONFIG_INT_OPTION("PARLEY_BROKER_MAX_SERVICES", T, max_services, "256", 1, 100000,
                      "distinct service names the broker tracks"),
    CONFIG_INT_OPTION("PARLEY_BROKER_MAX_PEERS", T, max_peers, "10000", 1, 1000000,
                      "connected workers and clients the broker tracks"),
    CONFIG_INT_OPTION("PARLEY_DRAIN_TIMEOUT_MS", T, drain_timeout_ms, "5000", 0, 600000,
                      "on SIGTERM, how long to wait for in-flight work (ms)"),
    CONFIG_INT_OPTION("PARLEY_BROKER_HTTP_MAX_CONNECTIONS", T, http_max_connections, "64", 1,
                      10000, "concurrent connections to the stats endpoint"),
    CONFIG_STR_OPTION("PARLEY_LOG_LEVEL", T, log_level, "info", "debug, info, warn or error"),
};
#undef T
const size_t broker_config_option_count =
    sizeof broker_config_options / sizeof broker_config_options[0];

/*  wsload.h - parley-wsload's options, shared by its parts.

    parley-wsload is a websocket load generator for room fan-out benchmarks (rooms of two
    sockets, a customer and an agent) against Parley's gateway or a plain relay; see main.c for
    the command line and wsload_run.c for the modes. The options are filled once by main.c and
    read-only afterwards, so every thread may read them. */
#ifndef WSLOAD_H
#define WSLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSLOAD_RATES_MAX 64

typedef enum { WSLOAD_PROTOCOL_RELAY, WSLOAD_PROTOCOL_PARLEY } wsload_protocol_t;
typedef enum { WSLOAD_MODE_IDLE, WSLOAD_MODE_FANOUT } wsload_mode_t;

typedef struct {
    wsload_mode_t mode;
    wsload_protocol_t protocol;
    const char *host; /* server address */
    int port;
    const char *path;                /* websocket path */
    int source_addresses;            /* loopback servers: local addresses 127.0.0.1..N to use */
    const char *tenant;              /* parley: tenant id */
    const char *project;             /* parley: project key */
    const char *project_key;         /* parley: the project's secret key (customer tokens) */
    const char *tenant_secret;       /* parley: the tenant's shared secret (agent tokens) */
    const char *agent;               /* parley: the agent's account id (sub) */
    const char *conversation_prefix; /* parley: conversation ids are <prefix><room> */
    uint32_t sockets;                /* idle: sockets to open */
    uint32_t rooms;                  /* fanout: rooms to set up */
    uint32_t identities;             /* idle parley: distinct customer e-mails, cycled */
    int threads;                     /* worker threads, rooms split between them */
    int connect_concurrency;         /* sockets being set up at once, over all threads */
    int connect_attempts;            /* tries per socket before it counts as failed */
    int setup_timeout_s;             /* setup gives up on what is not ready by then */
    bool wait_after_setup;           /* fanout: read a line from stdin before the steps */
    double rates[WSLOAD_RATES_MAX];  /* fanout: fixed steps, msgs/s over all rooms */
    int rate_count;
    bool search;           /* fanout: search for the highest passing rate */
    double search_start;   /* first rate of the search */
    double search_factor;  /* growth while steps pass */
    double search_max;     /* the search stops growing here */
    int search_bisections; /* bisections after the first failure */
    int repeat;            /* runs of the search */
    double warmup_s;       /* per step, not measured */
    double step_s;         /* per step, measured */
    int grace_ms;          /* per step, for stragglers */
    double p99_ms;         /* a passing step's p99 is below this */
    uint32_t text_bytes;   /* message text length (timestamp + padding) */
    uint64_t run_id;       /* makes message ids unique across runs */
} wsload_options_t;

#endif

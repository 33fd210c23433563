/*  bench.h - parley-bench: the load generators and baseline servers behind `make bench`.

    One binary, one role per run, chosen by the first argument (see main.c). scripts/bench.sh
    starts the servers (the broker and its echo replicas, and the baselines' servers), runs each
    client role for a fixed time, and compares the medians. A client role prints one
    `name: value` line per figure on stdout (see bench_run.h); server roles run until SIGTERM.

    Every system carries the same request bytes: an encoded proto_echo_request_t with `size`
    bytes of data (bench_payload_new). Raw baselines do not decode it; they write their send
    time into its first 8 bytes to measure latency. Single-threaded unless a role says not. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_WATCH_MAX 16
#define BENCH_BATCH_MAX 1024 /* items one Redis take may remove */

/* A process whose CPU time a client reports over the measured window. */
typedef struct {
    char label[32]; /* e.g. "broker"; printed as cpu_<label>_pct (summed per label) */
    pid_t pid;
} bench_watch_t;

typedef struct {
    int64_t inflight;    /* requests a client keeps in flight */
    int64_t warmup_ms;   /* after the first answer, time before measuring starts */
    int64_t duration_ms; /* measured time */
    int64_t size;        /* data bytes in each echo request */
    int64_t timeout_ms;  /* broker client: each request's deadline */
    const char *endpoint; /* --endpoint: ZeroMQ endpoint to bind (servers) or connect (clients) */
    const char *backend;  /* --backend: the proxy's worker-side endpoint */
    int64_t redis_port;   /* --redis-port: the Redis server on 127.0.0.1 */
    int64_t batch;        /* --batch: items one Redis take may remove; 1 = a BRPOP per item */
    const char *jobs_key; /* --jobs-key: the Redis list jobs go through */
    const char *tenant;   /* --tenant: jira-client's tenant */
    const char *project;  /* --project: jira-client's Jira project */
    int64_t messages;     /* --messages: jira-client's overhead mode (0: throughput mode) */
    bench_watch_t watch[BENCH_WATCH_MAX];
    size_t watch_count;
} bench_options_t;

/* Roles. Each returns the process exit code: 0 on success, 1 on a runtime failure (already
   logged). Clients print their figures on success. */
int bench_broker_client(const bench_options_t *options);
int bench_zmq_client(const bench_options_t *options);
int bench_zmq_echo(const bench_options_t *options);   /* ROUTER echo server, binds endpoint */
int bench_zmq_worker(const bench_options_t *options); /* DEALER echo, connects to endpoint */
int bench_zmq_proxy(const bench_options_t *options);  /* ROUTER endpoint <-> DEALER backend */
int bench_redis_client(const bench_options_t *options);
int bench_redis_worker(const bench_options_t *options);
int bench_jira_client(const bench_options_t *options); /* conversation.message through the broker */
int bench_http_post(const bench_options_t *options);   /* the same comment POST, straight to Jira */
/* a stand-in "jira" worker that persists nothing (bench_sink.c); runs until SIGTERM */
int bench_jira_sink(const bench_options_t *options);
int bench_ports(int count); /* prints count free TCP ports on 127.0.0.1 */
/* `cpu`: prints the CPU time the watched processes (and their main threads) have used so far */
int bench_cpu_sample(const bench_options_t *options);

/* Returns the request bytes every system carries (a heap buffer the caller frees) and sets
   *size_p, or returns NULL when memory runs out. The buffer is at least 8 bytes long. */
uint8_t *bench_payload_new(int64_t data_size, size_t *size_p);

/* Monotonic time in microseconds. This function can't fail. */
int64_t bench_now_us(void);

#endif

/*  wsload_stats.h - what one step of the load generator counted: messages sent and received in
    the measured window, their latencies, error frames and closed sockets, and CPU time.

    Latencies go into a log-linear histogram of microseconds (HDR-like): exact below 256 us,
    then 128 buckets per power of two, so a bucket is at most 0.8% wide, up to 2^34 us (larger
    values land in the last bucket). Recording is an index computation and an increment.
    Percentiles report a bucket's upper bound (never understating), capped at the largest value
    seen. Plain structs with no allocation: each worker thread fills its own, the controller
    merges copies. Not thread-safe. */
#ifndef WSLOAD_STATS_H
#define WSLOAD_STATS_H

#include <stdint.h>

#define WSLOAD_HIST_EXACT 256                    /* values below this have their own bucket */
#define WSLOAD_HIST_HALF (WSLOAD_HIST_EXACT / 2) /* buckets per power of two above that */
#define WSLOAD_HIST_BUCKETS (WSLOAD_HIST_EXACT + 26 * WSLOAD_HIST_HALF)

typedef struct {
    uint64_t counts[WSLOAD_HIST_BUCKETS];
    uint64_t total;  /* values recorded */
    uint64_t max_us; /* largest value recorded */
} wsload_histogram_t;

typedef struct {
    uint64_t sent;         /* messages due in the measured window (written or not) */
    uint64_t unsendable;   /* of those, due from a socket that was no longer open */
    uint64_t received;     /* messages sent in the window that arrived before the grace ended */
    uint64_t foreign;      /* message frames whose text was not ours or came back to the sender */
    uint64_t errors;       /* error frames during the step */
    uint64_t closed;       /* sockets that ended during the step */
    int64_t cpu_us;        /* process CPU time in the measured window (worker 0 only) */
    int64_t wall_us;       /* the measured window's actual length (worker 0 only) */
    int64_t thread_cpu_us; /* this worker thread's CPU time in the window */
    wsload_histogram_t latency;
} wsload_step_stats_t;

/* Records one value. This function can't fail. */
void wsload_histogram_record(wsload_histogram_t *self, uint64_t value_us);

/* Adds other's values into self. */
void wsload_histogram_merge(wsload_histogram_t *self, const wsload_histogram_t *other);

/* Returns the p-th percentile (0 < p <= 100) in microseconds, or 0 when nothing was recorded. */
uint64_t wsload_histogram_percentile(const wsload_histogram_t *self, double p);

/* Adds other into self: counters and latencies; CPU and wall fields take the larger. */
void wsload_step_stats_merge(wsload_step_stats_t *self, const wsload_step_stats_t *other);

/* Returns this process's (all threads) CPU time, user + system, in microseconds. */
int64_t wsload_cpu_process_us(void);

/* Returns the calling thread's CPU time, user + system, in microseconds. */
int64_t wsload_cpu_thread_us(void);

/* Returns CLOCK_MONOTONIC in nanoseconds. */
int64_t wsload_now_ns(void);

#endif

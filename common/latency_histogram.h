/*  latency_histogram.h - log-linear latency histogram with a sliding window, for percentiles.

    Values are microseconds. Buckets are exact below 16 us, then 8 per power of two (at most
    12.5% wide) up to about 2^40 us; percentiles report a bucket's upper bound, so they never
    understate. Percentiles cover the last LATENCY_WINDOW_MS (six rotating 10-second slots), which
    is what an operator watching a dashboard wants; count and sum cover the process lifetime (for
    Prometheus). Single-threaded; no allocation after _new. */
#ifndef LATENCY_HISTOGRAM_H
#define LATENCY_HISTOGRAM_H

#include <stdint.h>

#define LATENCY_SLOT_MS 10000
#define LATENCY_SLOTS 6
#define LATENCY_WINDOW_MS (LATENCY_SLOT_MS * LATENCY_SLOTS)

typedef struct latency_histogram_t latency_histogram_t;

/* Returns a new empty histogram, or NULL when memory runs out. */
latency_histogram_t *latency_histogram_new(void);

/* Frees it and sets *self_p to NULL. Accepts NULL. */
void latency_histogram_destroy(latency_histogram_t **self_p);

/* Records one value taken at now_ms (monotonic). This function can't fail. */
void latency_histogram_record(latency_histogram_t *self, uint64_t value_us, int64_t now_ms);

/* Returns the p-th percentile (0 < p <= 100) of the values recorded in the window ending at
   now_ms, or 0 when there are none. */
uint64_t latency_histogram_percentile(const latency_histogram_t *self, double p, int64_t now_ms);

/* Lifetime number and sum of recorded values. */
uint64_t latency_histogram_count(const latency_histogram_t *self);
uint64_t latency_histogram_sum_us(const latency_histogram_t *self);

#endif

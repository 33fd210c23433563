/*  wsload_stats.c - see wsload_stats.h. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "wsload_stats.h"

#include <sys/resource.h>
#include <time.h>

/* Returns the bucket of value_us. */
static unsigned s_bucket(uint64_t value_us)
{
    if (value_us < WSLOAD_HIST_EXACT)
        return (unsigned)value_us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(value_us); /* >= 8 */
    if (msb > 33) {
        return WSLOAD_HIST_BUCKETS - 1;
    }
    unsigned shift = msb - 7; /* value >> shift is in [128, 256) */
    return WSLOAD_HIST_EXACT + (shift - 1) * WSLOAD_HIST_HALF +
           (unsigned)((value_us >> shift) - WSLOAD_HIST_HALF);
}

/* Returns the largest value that falls into bucket. */
static uint64_t s_bucket_top(unsigned bucket)
{
    if (bucket < WSLOAD_HIST_EXACT)
        return bucket;
    unsigned shift = (bucket - WSLOAD_HIST_EXACT) / WSLOAD_HIST_HALF + 1;
    uint64_t sub = (bucket - WSLOAD_HIST_EXACT) % WSLOAD_HIST_HALF + WSLOAD_HIST_HALF;
    return ((sub + 1) << shift) - 1;
}

void wsload_histogram_record(wsload_histogram_t *self, uint64_t value_us)
{
    self->counts[s_bucket(value_us)]++;
    self->total++;
    if (value_us > self->max_us)
        self->max_us = value_us;
}

void wsload_histogram_merge(wsload_histogram_t *self, const wsload_histogram_t *other)
{
    for (unsigned i = 0; i < WSLOAD_HIST_BUCKETS; i++)
        self->counts[i] += other->counts[i];
    self->total += other->total;
    if (other->max_us > self->max_us)
        self->max_us = other->max_us;
}

uint64_t wsload_histogram_percentile(const wsload_histogram_t *self, double p)
{
    if (self->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)self->total + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > self->total)
        rank = self->total;
    uint64_t seen = 0;
    for (unsigned i = 0; i < WSLOAD_HIST_BUCKETS; i++) {
        seen += self->counts[i];
        if (seen >= rank) {
            uint64_t top = s_bucket_top(i);
            return top < self->max_us ? top : self->max_us;
        }
    }
    return self->max_us;
}

void wsload_step_stats_merge(wsload_step_stats_t *self, const wsload_step_stats_t *other)
{
    self->sent += other->sent;
    self->unsendable += other->unsendable;
    self->received += other->received;
    self->foreign += other->foreign;
    self->errors += other->errors;
    self->closed += other->closed;
    if (other->cpu_us > self->cpu_us)
        self->cpu_us = other->cpu_us;
    if (other->wall_us > self->wall_us)
        self->wall_us = other->wall_us;
    if (other->thread_cpu_us > self->thread_cpu_us)
        self->thread_cpu_us = other->thread_cpu_us;
    wsload_histogram_merge(&self->latency, &other->latency);
}

/* Returns who's CPU time in microseconds, or 0 when getrusage fails. */
static int64_t s_rusage_us(int who)
{
    struct rusage usage;
    if (getrusage(who, &usage) != 0)
        return 0;
    return ((int64_t)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
           usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

int64_t wsload_cpu_process_us(void)
{
    return s_rusage_us(RUSAGE_SELF);
}

int64_t wsload_cpu_thread_us(void)
{
    return s_rusage_us(RUSAGE_THREAD);
}

int64_t wsload_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

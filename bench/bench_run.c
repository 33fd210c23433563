/*  bench_run.c - see bench_run.h. Owns the latency samples (microseconds, one per answer in
    the window), sorted once for the percentiles. */
#include "bench_run.h"
#include "bench_cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { S_WAITING, S_WARMUP, S_MEASURING, S_DONE } s_phase_t;

struct bench_run_t {
    const bench_options_t *options; /* borrowed */
    s_phase_t phase;
    int64_t created_us;
    int64_t first_answer_us;
    int64_t window_start_us, window_end_us;
    uint64_t answers, errors;              /* lifetime */
    uint64_t answers_start, answers_end;   /* at the window's edges */
    uint64_t errors_start, errors_end;
    int64_t cpu_self_start_us, cpu_self_end_us;     /* the whole process */
    int64_t cpu_thread_start_us, cpu_thread_end_us; /* the thread that ticks (the client's) */
    int64_t cpu_watch_start_us[BENCH_WATCH_MAX], cpu_watch_end_us[BENCH_WATCH_MAX];
    uint32_t *samples; /* latency in us, answers inside the window */
    size_t sample_count, sample_capacity;
    uint64_t samples_dropped;
};

int64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bench_run_t *bench_run_new(const bench_options_t *options)
{
    bench_run_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->options = options;
    self->phase = S_WAITING;
    self->created_us = bench_now_us();
    return self;
}

void bench_run_destroy(bench_run_t **self_p)
{
    bench_run_t *self = *self_p;
    if (!self)
        return;
    free(self->samples);
    free(self);
    *self_p = NULL;
}

static void s_sample(bench_run_t *self, int64_t latency_us)
{
    if (self->sample_count == self->sample_capacity) {
        size_t capacity = self->sample_capacity ? self->sample_capacity * 2 : 65536;
        uint32_t *samples = realloc(self->samples, capacity * sizeof *samples);
        if (!samples) {
            self->samples_dropped++;
            return;
        }
        self->samples = samples;
        self->sample_capacity = capacity;
    }
    if (latency_us < 0)
        latency_us = 0;
    self->samples[self->sample_count++] =
        latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
}

void bench_run_answer(bench_run_t *self, int64_t sent_us, int64_t now_us)
{
    self->answers++;
    if (self->phase == S_WAITING && !self->first_answer_us)
        self->first_answer_us = now_us;
    if (self->phase == S_MEASURING)
        s_sample(self, now_us - sent_us);
}

void bench_run_error(bench_run_t *self)
{
    self->errors++;
}

/* Takes the CPU snapshots of this process, this thread and the watched processes. */
static void s_cpu_snapshot(const bench_run_t *self, int64_t *self_us, int64_t *thread_us,
                           int64_t *watch_us)
{
    *self_us = bench_cpu_self_us();
    *thread_us = bench_cpu_thread_us();
    for (size_t i = 0; i < self->options->watch_count; i++)
        watch_us[i] = bench_cpu_pid_us(self->options->watch[i].pid);
}

bool bench_run_tick(bench_run_t *self, int64_t now_us)
{
    switch (self->phase) {
    case S_WAITING:
        if (self->first_answer_us)
            self->phase = S_WARMUP;
        else if (now_us - self->created_us > BENCH_FIRST_ANSWER_MS * 1000) {
            fprintf(stderr, "parley-bench: no answer within %d ms (%llu errors)\n",
                    BENCH_FIRST_ANSWER_MS, (unsigned long long)self->errors);
            self->phase = S_DONE;
            return true;
        }
        return false;
    case S_WARMUP:
        if (now_us - self->first_answer_us >= self->options->warmup_ms * 1000) {
            self->phase = S_MEASURING;
            self->answers_start = self->answers;
            self->errors_start = self->errors;
            s_cpu_snapshot(self, &self->cpu_self_start_us, &self->cpu_thread_start_us,
                           self->cpu_watch_start_us);
            self->window_start_us = bench_now_us();
        }
        return false;
    case S_MEASURING:
        if (now_us - self->window_start_us >= self->options->duration_ms * 1000) {
            self->window_end_us = bench_now_us();
            self->answers_end = self->answers;
            self->errors_end = self->errors;
            s_cpu_snapshot(self, &self->cpu_self_end_us, &self->cpu_thread_end_us,
                           self->cpu_watch_end_us);
            self->phase = S_DONE;
            return true;
        }
        return false;
    case S_DONE:
        return true;
    }
    return true;
}

static int s_compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples. */
static uint32_t s_percentile(const bench_run_t *self, double p)
{
    if (self->sample_count == 0)
        return 0;
    size_t rank = (size_t)ceil(p / 100.0 * (double)self->sample_count);
    if (rank < 1)
        rank = 1;
    if (rank > self->sample_count)
        rank = self->sample_count;
    return self->samples[rank - 1];
}

static double s_pct(int64_t start_us, int64_t end_us, int64_t window_us)
{
    if (start_us < 0 || end_us < 0 || window_us <= 0)
        return -1;
    return 100.0 * (double)(end_us - start_us) / (double)window_us;
}

int bench_run_report(bench_run_t *self)
{
    if (self->phase != S_DONE || self->window_end_us == 0) {
        fprintf(stderr, "parley-bench: nothing was measured\n");
        return -1;
    }
    int64_t window_us = self->window_end_us - self->window_start_us;
    uint64_t answers = self->answers_end - self->answers_start;
    if (answers == 0 || window_us <= 0) {
        fprintf(stderr, "parley-bench: no answers inside the measured window\n");
        return -1;
    }
    qsort(self->samples, self->sample_count, sizeof *self->samples, s_compare_u32);
    printf("rps: %.0f\n", (double)answers * 1e6 / (double)window_us);
    printf("answers: %llu\n", (unsigned long long)answers);
    printf("errors: %llu\n", (unsigned long long)(self->errors_end - self->errors_start));
    printf("p50_us: %u\n", (unsigned)s_percentile(self, 50));
    printf("p99_us: %u\n", (unsigned)s_percentile(self, 99));
    if (self->samples_dropped)
        printf("samples_dropped: %llu\n", (unsigned long long)self->samples_dropped);
    printf("cpu_client_pct: %.1f\n",
           s_pct(self->cpu_self_start_us, self->cpu_self_end_us, window_us));
    printf("cpu_client_main_pct: %.1f\n",
           s_pct(self->cpu_thread_start_us, self->cpu_thread_end_us, window_us));
    /* One line per label, summing the processes that share it (e.g. every echo replica). */
    const bench_options_t *o = self->options;
    for (size_t i = 0; i < o->watch_count; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(o->watch[j].label, o->watch[i].label) == 0;
        if (seen)
            continue;
        double total = 0;
        for (size_t j = i; j < o->watch_count; j++)
            if (strcmp(o->watch[j].label, o->watch[i].label) == 0) {
                double pct = s_pct(self->cpu_watch_start_us[j], self->cpu_watch_end_us[j],
                                   window_us);
                total += pct > 0 ? pct : 0;
            }
        printf("cpu_%s_pct: %.1f\n", o->watch[i].label, total);
    }
    fflush(stdout);
    return 0;
}

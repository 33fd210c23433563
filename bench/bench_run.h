/*  bench_run.h - one measurement by a load generator: waits for the first answer (the servers
    are up), warms up, measures for a fixed time, then prints its figures.

    The client calls bench_run_answer() for each answer with the time its request was sent and
    bench_run_tick() after every batch of answers (and when idle); tick moves the phases on and
    takes the CPU snapshots at the window's edges, so the window is exactly what was counted.
    Answers count towards throughput and latency only inside the window. Single-threaded. */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include "bench.h"

#include <stdbool.h>

#define BENCH_FIRST_ANSWER_MS 10000 /* give up when nothing answers this long */

typedef struct bench_run_t bench_run_t;

/* Returns a new run (options are borrowed for its lifetime), or NULL when memory runs out. */
bench_run_t *bench_run_new(const bench_options_t *options);

/* Frees it and sets *self_p to NULL. Accepts NULL. */
void bench_run_destroy(bench_run_t **self_p);

/* Records one answer to a request sent at sent_us (bench_now_us). This function can't fail;
   when memory for latency samples runs out, later samples are dropped (and reported). */
void bench_run_answer(bench_run_t *self, int64_t sent_us, int64_t now_us);

/* Records one answer that was an error or did not check out. */
void bench_run_error(bench_run_t *self);

/* Moves the phases on. Returns true once the run is over: measured, or given up because
   nothing answered within BENCH_FIRST_ANSWER_MS. */
bool bench_run_tick(bench_run_t *self, int64_t now_us);

/* Prints the figures as `name: value` lines on stdout: rps, answers, errors, p50_us, p99_us,
   cpu_client_pct (this process), cpu_client_main_pct (the thread that ticks: the load
   generator's own loop, without libzmq's I/O thread) and cpu_<label>_pct per watched label
   (100 = one core). Returns 0, or -1 when
   nothing was measured (after saying why on stderr). */
int bench_run_report(bench_run_t *self);

#endif

/*  wsload_run.c - see wsload_run.h. */
#define _GNU_SOURCE
#include "wsload_run.h"
#include "ws_client.h"
#include "wsload_stats.h"
#include "wsload_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define S_THREADS_MAX 64
#define S_STEP_LEAD_MS 20 /* a step starts this long after it is ordered, on every thread */

typedef struct {
    const wsload_options_t *options; /* borrowed */
    wsload_worker_t *workers[S_THREADS_MAX];
    int count;
    int done_fd;                   /* workers add 1 per finished order */
    int signal_fd;                 /* SIGTERM, SIGINT */
    uint32_t ready[S_THREADS_MAX]; /* per worker: rooms (fanout) set up */
    uint32_t ready_total;
    bool interrupted;
} s_run_t;

typedef struct {
    double rate;
    wsload_step_stats_t stats;
    bool pass;
} s_step_t;

/* Waits until every worker finished its order. Returns 0, or -1 when a signal came first. */
static int s_wait_workers(s_run_t *self)
{
    uint64_t done = 0;
    while (done < (uint64_t)self->count) {
        struct pollfd fds[2] = {{self->done_fd, POLLIN, 0}, {self->signal_fd, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "wsload: poll failed: %s\n", strerror(errno));
            return -1;
        }
        if (fds[1].revents) {
            self->interrupted = true;
            return -1;
        }
        uint64_t count;
        if (read(self->done_fd, &count, sizeof count) == sizeof count)
            done += count;
    }
    return 0;
}

/* Gives every worker the same order. */
static void s_order_all(s_run_t *self, const wsload_order_t *order)
{
    for (int i = 0; i < self->count; i++)
        wsload_worker_order(self->workers[i], order);
}

/* Reads stdin until a newline (line true) or EOF, or until a signal. Returns 0, or -1 on a
   signal. */
static int s_wait_stdin(s_run_t *self, bool line)
{
    for (;;) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {self->signal_fd, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (fds[1].revents) {
            self->interrupted = true;
            return -1;
        }
        char buffer[512];
        ssize_t got = read(STDIN_FILENO, buffer, line ? 1 : sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || (line && buffer[0] == '\n'))
            return 0;
        if (fds[0].revents & (POLLHUP | POLLERR) && !(fds[0].revents & POLLIN))
            return 0;
    }
}

/* Sets up the workers' sockets, phase by phase. Returns 0, or -1 when interrupted. Fills
 *ready and *failed (rooms for fanout, sockets for idle). */
static int s_setup(s_run_t *self, uint32_t *ready, uint32_t *failed)
{
    const wsload_options_t *o = self->options;
    bool fanout = o->mode == WSLOAD_MODE_FANOUT;
    int phases = fanout && o->protocol == WSLOAD_PROTOCOL_PARLEY ? 2 : 1;
    *ready = *failed = 0;
    for (int phase = 0; phase < phases; phase++) {
        wsload_order_t order = {.kind = WSLOAD_ORDER_SETUP, .phase = phase};
        s_order_all(self, &order);
        if (s_wait_workers(self) != 0)
            return -1;
        uint32_t sockets_ready = 0, sockets_failed = 0;
        for (int i = 0; i < self->count; i++) {
            wsload_report_t report;
            wsload_worker_report(self->workers[i], &report);
            sockets_ready += report.sockets_ready;
            sockets_failed += report.sockets_failed;
            self->ready[i] = fanout ? report.rooms_ready : report.sockets_ready;
        }
        if (phases > 1)
            fprintf(stderr, "wsload: %s set up: %" PRIu32 " ready, %" PRIu32 " failed\n",
                    phase == 0 ? "customers" : "agents", sockets_ready, sockets_failed);
    }
    for (int i = 0; i < self->count; i++)
        *ready += self->ready[i];
    self->ready_total = *ready;
    *failed = (fanout ? o->rooms : o->sockets) - *ready;
    return 0;
}

/* True when a step passes: p99 under the bound, (almost) nothing lost, 95% of the target
   received, no socket closed. */
static bool s_passes(const wsload_options_t *o, double rate, const wsload_step_stats_t *stats)
{
    uint64_t lost = stats->sent > stats->received ? stats->sent - stats->received : 0;
    double p99_ms = (double)wsload_histogram_percentile(&stats->latency, 99) / 1000.0;
    return stats->received > 0 && p99_ms < o->p99_ms && lost * 1000 <= stats->sent &&
           (double)stats->received >= 0.95 * rate * o->step_s && stats->closed == 0;
}

/* Runs one step at rate (messages per second over all rooms) and prints its line. Returns 0,
   or -1 when interrupted. */
static int s_step(s_run_t *self, double rate, s_step_t *step)
{
    const wsload_options_t *o = self->options;
    int64_t start = wsload_now_ns() + (int64_t)S_STEP_LEAD_MS * 1000000;
    wsload_order_t order = {.kind = WSLOAD_ORDER_STEP, .start_ns = start};
    order.measure_ns = start + (int64_t)(o->warmup_s * 1e9);
    order.end_ns = order.measure_ns + (int64_t)(o->step_s * 1e9);
    order.grace_ns = order.end_ns + (int64_t)o->grace_ms * 1000000;
    for (int i = 0; i < self->count; i++) {
        order.rate = self->ready_total ? rate * self->ready[i] / self->ready_total : 0;
        wsload_worker_order(self->workers[i], &order);
    }
    if (s_wait_workers(self) != 0)
        return -1;
    memset(step, 0, sizeof *step);
    step->rate = rate;
    for (int i = 0; i < self->count; i++) {
        wsload_report_t report;
        wsload_worker_report(self->workers[i], &report);
        wsload_step_stats_merge(&step->stats, &report.step);
    }
    const wsload_step_stats_t *s = &step->stats;
    step->pass = s_passes(o, rate, s);
    uint64_t lost = s->sent > s->received ? s->sent - s->received : 0;
    double wall_us = s->wall_us > 0 ? (double)s->wall_us : o->step_s * 1e6;
    printf("step rate=%.0f sent=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
           " achieved=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%" PRIu64 " closed=%" PRIu64
           " cpu_pct=%.1f cpu_thread_max_pct=%.1f pass=%d\n",
           rate, s->sent, s->received, lost, (double)s->received / o->step_s,
           (double)wsload_histogram_percentile(&s->latency, 50) / 1000.0,
           (double)wsload_histogram_percentile(&s->latency, 99) / 1000.0,
           (double)s->latency.max_us / 1000.0, s->errors, s->closed,
           100.0 * (double)s->cpu_us / wall_us, 100.0 * (double)s->thread_cpu_us / wall_us,
           step->pass ? 1 : 0);
    fflush(stdout);
    if (s->unsendable || s->foreign)
        fprintf(stderr,
                "wsload: step rate=%.0f: %" PRIu64 " due from closed sockets, %" PRIu64
                " message frames not ours\n",
                rate, s->unsendable, s->foreign);
    if (!step->pass) {
        /* an overloaded server still holds a backlog: let it drain before the next step,
           or that step measures this one's queue (three times the worst latency seen plus
           2 s, at most 30 s) */
        int64_t settle_ms = 3 * (int64_t)(s->latency.max_us / 1000) + 2000;
        if (settle_ms > 30000)
            settle_ms = 30000;
        struct timespec pause = {settle_ms / 1000, (settle_ms % 1000) * 1000000};
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* Searches for the highest passing rate: grows by search_factor while steps pass, then
   bisects between the last pass and the first failure. Returns 0, or -1 when interrupted. */
static int s_search(s_run_t *self)
{
    const wsload_options_t *o = self->options;
    s_step_t best = {0}, step;
    double rate = o->search_start, failed = 0;
    for (;;) {
        if (s_step(self, rate, &step) != 0)
            return -1;
        if (!step.pass) {
            failed = rate;
            break;
        }
        best = step;
        if (rate >= o->search_max)
            break;
        rate = fmin(round(rate * o->search_factor), o->search_max);
    }
    for (int i = 0; failed > 0 && i < o->search_bisections; i++) {
        rate = round((best.rate + failed) / 2);
        if (rate <= best.rate || rate >= failed)
            break;
        if (s_step(self, rate, &step) != 0)
            return -1;
        if (step.pass)
            best = step;
        else
            failed = rate;
    }
    printf("search_best rate=%.0f p50_ms=%.3f p99_ms=%.3f\n", best.rate,
           (double)wsload_histogram_percentile(&best.stats.latency, 50) / 1000.0,
           (double)wsload_histogram_percentile(&best.stats.latency, 99) / 1000.0);
    fflush(stdout);
    return 0;
}

/* Prints what the workers counted over the whole run, on stderr. */
static void s_totals(s_run_t *self)
{
    wsload_report_t total = {0};
    for (int i = 0; i < self->count; i++) {
        wsload_report_t report;
        wsload_worker_report(self->workers[i], &report);
        total.errors += report.errors;
        total.dropped += report.dropped;
        for (int j = 0; j < 8; j++)
            total.ends[j] += report.ends[j];
        for (int j = 0; j < WSLOAD_CLOSE_CODES; j++)
            total.close_codes[j] += report.close_codes[j];
        total.close_other += report.close_other;
    }
    fprintf(stderr, "wsload: totals error_frames=%" PRIu64 " sockets_ended_after_setup=%" PRIu64,
            total.errors, total.dropped);
    for (int j = 1; j < 8; j++)
        if (total.ends[j])
            fprintf(stderr, " end_%s=%" PRIu64, ws_end_name((ws_end_t)j), total.ends[j]);
    for (int j = 0; j < WSLOAD_CLOSE_CODES; j++)
        if (total.close_codes[j])
            fprintf(stderr, " close_%d=%" PRIu64, 1000 + j, total.close_codes[j]);
    if (total.close_other)
        fprintf(stderr, " close_other=%" PRIu64, total.close_other);
    fprintf(stderr, "\n");
}

/* Runs the fanout mode on set-up workers. Returns the exit code. */
static int s_fanout(s_run_t *self, uint32_t ready, uint32_t failed)
{
    const wsload_options_t *o = self->options;
    if (ready == 0 || (uint64_t)failed * 100 > o->rooms) {
        fprintf(stderr,
                "wsload: setup failed for %" PRIu32 " of %" PRIu32
                " rooms (more than 1%%): not running steps\n",
                failed, o->rooms);
        return 1;
    }
    if (o->wait_after_setup) {
        fprintf(stderr, "wsload: waiting for a line on stdin\n");
        if (s_wait_stdin(self, true) != 0)
            return 1;
    }
    s_step_t step;
    for (int i = 0; i < o->rate_count; i++)
        if (s_step(self, o->rates[i], &step) != 0)
            return 1;
    for (int i = 0; o->search && i < o->repeat; i++)
        if (s_search(self) != 0)
            return 1;
    return 0;
}

int wsload_run(const wsload_options_t *options)
{
    s_run_t self = {.options = options, .done_fd = -1, .signal_fd = -1};
    bool fanout = options->mode == WSLOAD_MODE_FANOUT;
    uint32_t total = fanout ? options->rooms : options->sockets;
    int rc = 2;
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &signals, NULL); /* threads started later inherit it */
    self.signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
    self.done_fd = eventfd(0, EFD_CLOEXEC);
    if (self.signal_fd < 0 || self.done_fd < 0) {
        fprintf(stderr, "wsload: signalfd/eventfd failed: %s\n", strerror(errno));
        goto done;
    }
    int threads = options->threads < S_THREADS_MAX ? options->threads : S_THREADS_MAX;
    if ((uint32_t)threads > total)
        threads = (int)total;
    for (int i = 0; i < threads; i++) {
        uint32_t first = (uint32_t)((uint64_t)total * i / threads);
        uint32_t next = (uint32_t)((uint64_t)total * (i + 1) / threads);
        self.workers[i] = wsload_worker_new(options, i, first, next - first, self.done_fd);
        if (!self.workers[i] || wsload_worker_start(self.workers[i]) != 0)
            goto done;
        self.count = i + 1;
    }

    int64_t began = wsload_now_ns();
    uint32_t ready, failed;
    rc = 1;
    if (s_setup(&self, &ready, &failed) != 0)
        goto done;
    double seconds = (double)(wsload_now_ns() - began) / 1e9;
    printf("%s %s=%" PRIu32 " failed=%" PRIu32 " seconds=%.2f\n",
           fanout ? "setup_done" : "idle_ready", fanout ? "rooms" : "sockets", ready, failed,
           seconds);
    fflush(stdout);
    if (fanout) {
        rc = s_fanout(&self, ready, failed);
    } else if ((uint64_t)failed * 100 > total) {
        fprintf(stderr,
                "wsload: setup failed for %" PRIu32 " of %" PRIu32 " sockets (more than 1%%)\n",
                failed, total);
    } else {
        s_wait_stdin(&self, false); /* EOF, or SIGTERM */
        for (int i = 0; i < self.count; i++)
            wsload_worker_stop(self.workers[i]);
        uint64_t dropped = 0;
        for (int i = 0; i < self.count; i++) {
            wsload_report_t report;
            wsload_worker_report(self.workers[i], &report);
            dropped += report.dropped;
        }
        printf("idle_done closed=%" PRIu64 "\n", dropped);
        fflush(stdout);
        rc = 0;
    }
done:
    if (self.interrupted && fanout)
        fprintf(stderr, "wsload: interrupted by a signal\n");
    for (int i = 0; i < self.count; i++)
        wsload_worker_stop(self.workers[i]);
    if (self.count > 0)
        s_totals(&self);
    for (int i = 0; i < self.count; i++)
        wsload_worker_destroy(&self.workers[i]);
    if (self.done_fd >= 0)
        close(self.done_fd);
    if (self.signal_fd >= 0)
        close(self.signal_fd);
    return rc;
}

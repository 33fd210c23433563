/*  bench_cpu_sample.c - `parley-bench cpu --watch LABEL:PID ...`: one snapshot of the CPU time
    the watched processes have used so far, for scripts/bench.sh to difference around a load it
    does not generate itself (presence-sim's flood), where no bench_run window exists.

    Prints `name: value` lines on stdout: wall_us (the monotonic clock, the same one bench_run
    uses), then per watch LABEL_us (the whole process) and LABEL_main_us (its main thread: for a
    Parley worker, the request loop, apart from libzmq's I/O thread and any actor thread), both
    user + system microseconds with clock-tick resolution. Stateless; single-threaded. */
#include "bench.h"
#include "bench_cpu.h"

#include <inttypes.h>
#include <stdio.h>

int bench_cpu_sample(const bench_options_t *options)
{
    if (options->watch_count == 0) {
        fprintf(stderr, "parley-bench cpu: nothing to watch (--watch LABEL:PID)\n");
        return 1;
    }
    int rc = 0;
    printf("wall_us: %" PRId64 "\n", bench_now_us());
    for (size_t i = 0; i < options->watch_count; i++) {
        const bench_watch_t *watch = &options->watch[i];
        int64_t process_us = bench_cpu_pid_us(watch->pid);
        int64_t main_us = bench_cpu_main_thread_us(watch->pid);
        if (process_us < 0 || main_us < 0) {
            fprintf(stderr, "parley-bench cpu: process %s (%d) is gone\n", watch->label,
                    (int)watch->pid);
            rc = 1;
            continue;
        }
        printf("%s_us: %" PRId64 "\n%s_main_us: %" PRId64 "\n", watch->label, process_us,
               watch->label, main_us);
    }
    return rc;
}

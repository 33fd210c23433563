/*  bench_cpu.h - CPU time used by this process and by others, to tell whether a load generator
    or a server is the bottleneck. Linux only (reads /proc). Stateless; any thread. */
#ifndef BENCH_CPU_H
#define BENCH_CPU_H

#include <stdint.h>
#include <sys/types.h>

/* Returns the user + system CPU time of this process (all threads) in microseconds, or -1
   when getrusage fails. */
int64_t bench_cpu_self_us(void);

/* Returns the user + system CPU time of the calling thread in microseconds, or -1 when
   getrusage fails. */
int64_t bench_cpu_thread_us(void);

/* Returns the user + system CPU time of process pid (all threads) in microseconds, from
   /proc/<pid>/stat (clock-tick resolution), or -1 when the process is gone or the file does not
   parse. */
int64_t bench_cpu_pid_us(pid_t pid);

/* Returns the user + system CPU time of process pid's main thread (the one whose thread id is
   pid: where main() runs, e.g. a worker's request loop) in microseconds, from
   /proc/<pid>/task/<pid>/stat, or -1 like bench_cpu_pid_us. */
int64_t bench_cpu_main_thread_us(pid_t pid);

#endif

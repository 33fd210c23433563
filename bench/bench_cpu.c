/*  bench_cpu.c - see bench_cpu.h. */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "bench_cpu.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Returns who's CPU time (RUSAGE_SELF or RUSAGE_THREAD) in microseconds, or -1. */
static int64_t s_rusage_us(int who)
{
    struct rusage usage;
    if (getrusage(who, &usage) != 0)
        return -1;
    return (int64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
           usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

int64_t bench_cpu_self_us(void)
{
    return s_rusage_us(RUSAGE_SELF);
}

int64_t bench_cpu_thread_us(void)
{
    return s_rusage_us(RUSAGE_THREAD);
}

/* Returns the user + system CPU time in a /proc stat file (a process's or a thread's) in
   microseconds, or -1 when the file is gone or does not parse. */
static int64_t s_stat_us(const char *path)
{
    char line[1024];
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, file);
    fclose(file);
    line[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: skip past its last ')'. */
    const char *rest = strrchr(line, ')');
    unsigned long long utime, stime;
    /* After it: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt, then
       utime and stime (fields 14 and 15, in clock ticks). */
    if (!rest || sscanf(rest + 1, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu",
                        &utime, &stime) != 2)
        return -1;
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0)
        return -1;
    return (int64_t)((utime + stime) * 1000000ULL / (unsigned long long)ticks);
}

int64_t bench_cpu_pid_us(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    return s_stat_us(path);
}

int64_t bench_cpu_main_thread_us(pid_t pid)
{
    char path[80];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    return s_stat_us(path);
}

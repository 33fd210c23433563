/*  pid_cache.c - getpid() without a system call, for every library in a Parley process.

    libzmq looks at getpid() each time a socket checks its command mailbox (to notice that the
    process forked), and glibc has not cached the pid since 2.25, so each check is a system
    call: about 41,000 a second across the gateway, broker and a worker at 20,000 chat
    messages a second, at about 1 us each on the benchmark's VM. An executable's own
    definition of a symbol comes before libc's for the shared libraries it loads too, so this
    one serves libzmq, czmq and the rest. The value is read once at start and again in the
    child after a fork() (pthread_atfork). A child made by a raw clone() without fork's
    handlers would see the parent's pid: Parley makes none, and posix_spawn's child execs
    without asking.

    The Makefile links this file into every Parley binary (-Wl,--undefined=getpid pulls it
    out of libparley.a). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic pid_t s_pid;

static void s_refresh(void)
{
    atomic_store_explicit(&s_pid, (pid_t)syscall(SYS_getpid), memory_order_relaxed);
}

__attribute__((constructor)) static void s_start(void)
{
    s_refresh();
    pthread_atfork(NULL, NULL, s_refresh);
}

pid_t getpid(void)
{
    pid_t pid = atomic_load_explicit(&s_pid, memory_order_relaxed);
    if (pid == 0) { /* a constructor of another library ran first and asked */
        pid = (pid_t)syscall(SYS_getpid);
        atomic_store_explicit(&s_pid, pid, memory_order_relaxed);
    }
    return pid;
}

/*  signals.h - SIGTERM and SIGINT as a file descriptor that an event loop can poll.

    Call signals_open() first thing in main, before any thread (ZeroMQ's I/O threads) exists:
    it blocks the signals in the calling thread, which every later thread inherits, and returns
    a signalfd that becomes readable when one arrives. This lets each process drain gracefully
    from inside its own loop instead of from an async signal handler. It also turns off czmq's
    own interrupt handler so that loops do not stop behind our back. */
#ifndef SIGNALS_H
#define SIGNALS_H

/* Returns a non-blocking signalfd for SIGTERM and SIGINT, or -1 with errno set. SIGPIPE is set
   to be ignored. */
int signals_open(void);

/* Reads one pending signal from fd; returns its number, or 0 when none is pending. */
int signals_read(int fd);

#endif

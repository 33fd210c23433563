/*  wsload_run.h - the controller of parley-wsload: splits the rooms (or sockets) between worker
    threads, orders their setup, runs the modes and prints the result lines on stdout.

      idle    sets up options->sockets sockets, prints `idle_ready sockets= failed= seconds=`,
              holds them until stdin reaches EOF or SIGTERM/SIGINT, closes them and prints
              `idle_done closed=` (sockets the server ended while they were held).
      fanout  sets up options->rooms rooms, prints `setup_done rooms= failed= seconds=`,
              optionally waits for a line on stdin, then runs one `step ...` line per rate of
              options->rates, then the search (`step` lines, then `search_best ...`).

    Runs on the main thread, which only waits (poll on the workers' done eventfd, a signalfd
    and stdin) while the workers work. SIGTERM and SIGINT are blocked in every thread and read
    from the signalfd; SIGPIPE is ignored. */
#ifndef WSLOAD_RUN_H
#define WSLOAD_RUN_H

#include "wsload.h"

/* Runs options->mode. Returns the exit code: 0 when it ran; 1 when setup failed for more
   than 1% of the rooms or sockets, or the run was interrupted (fanout); 2 when it could not
   start (after printing why on stderr). */
int wsload_run(const wsload_options_t *options);

#endif

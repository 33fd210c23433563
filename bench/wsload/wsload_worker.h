/*  wsload_worker.h - one load-generating thread: its share of the rooms (fanout) or sockets
    (idle), one epoll loop over their connections, and the orders the controller gives it.

    A worker owns its sessions (a ws_conn_t and its protocol state each), its rooms, a
    ws_client_t, a wsload_proto_t, an epoll instance, a timerfd (1 ms ticks while a step runs)
    and an eventfd the controller wakes it with. Between orders it keeps its sockets serviced
    (pings answered, frames read). Orders:

      SETUP phase 0/1  open and set up the phase's sockets: at most connect_concurrency /
                       threads at once, a failed attempt retried with backoff up to
                       connect_attempts times, given up at setup_timeout_s. Fanout parley: phase
                       0 is the customers, phase 1 the agents (once every customer has its
                       issue); otherwise phase 0 is everything.
      STEP             send at `rate` msgs/s from start_ns to end_ns, round robin over the rooms
                       that are set up, each room alternating customer and agent; count what was
                       sent in [measure_ns, end_ns) and what of that arrives by grace_ns.
      CLOSE            close every socket (close frame, then at most 2 s for the answers), then
                       the thread exits.

    When an order is done the worker publishes a report under its lock and adds 1 to the
    controller's done eventfd. The controller reads reports only after that, and gives the next
    order only then; CLOSE may interrupt any order, and wsload_worker_stop() gives it and joins
    the thread instead of waiting for the done count. */
#ifndef WSLOAD_WORKER_H
#define WSLOAD_WORKER_H

#include "wsload.h"
#include "wsload_stats.h"

#include <stdint.h>

typedef enum {
    WSLOAD_ORDER_SETUP = 1,
    WSLOAD_ORDER_STEP,
    WSLOAD_ORDER_CLOSE,
} wsload_order_kind_t;

typedef struct {
    wsload_order_kind_t kind;
    int phase;          /* SETUP: 0 or 1, see above */
    double rate;        /* STEP: this worker's messages per second */
    int64_t start_ns;   /* STEP: sending starts (CLOCK_MONOTONIC) */
    int64_t measure_ns; /* STEP: the measured window starts */
    int64_t end_ns;     /* STEP: sending stops, the window ends */
    int64_t grace_ns;   /* STEP: the step is over */
} wsload_order_t;

#define WSLOAD_CLOSE_CODES 16 /* close codes 1000..1015 are counted one by one */

typedef struct {
    uint32_t sockets_ready;   /* SETUP: sockets of the phase that are set up */
    uint32_t sockets_failed;  /* SETUP: sockets of the phase that gave up */
    uint32_t rooms_ready;     /* fanout: rooms with both members set up (after the last phase) */
    uint32_t open;            /* sockets open now */
    wsload_step_stats_t step; /* STEP: what it counted */
    /* since the start, outside CLOSE: */
    uint64_t errors;                          /* error frames */
    uint64_t ends[8];                         /* sockets that ended, by ws_end_t */
    uint64_t close_codes[WSLOAD_CLOSE_CODES]; /* close frames received, code 1000 + i */
    uint64_t close_other;                     /* close frames with another code */
    uint64_t dropped;                         /* sockets that ended after they were set up */
} wsload_report_t;

typedef struct wsload_worker_t wsload_worker_t;

/* Returns a worker for rooms (fanout) or sockets (idle) first .. first + count - 1, which
   reports to done_fd (borrowed). Options are borrowed. Returns NULL after printing why when
   memory, descriptors or name resolution fail. */
wsload_worker_t *wsload_worker_new(const wsload_options_t *options, int index, uint32_t first,
                                   uint32_t count, int done_fd);

/* Stops the thread if it runs: gives a CLOSE order (which interrupts any other) and waits for
   the thread to end. Its last report is final afterwards. */
void wsload_worker_stop(wsload_worker_t *self);

/* Stops it (wsload_worker_stop), frees everything, sets *self_p to NULL. Accepts NULL. */
void wsload_worker_destroy(wsload_worker_t **self_p);

/* Starts the worker's thread. Returns 0, or -1 after printing why. */
int wsload_worker_start(wsload_worker_t *self);

/* Gives the worker an order (copied). This function can't fail. */
void wsload_worker_order(wsload_worker_t *self, const wsload_order_t *order);

/* Copies the report of the last finished order into *report. */
void wsload_worker_report(wsload_worker_t *self, wsload_report_t *report);

/* Returns the number of rooms (fanout) or sockets (idle) this worker has. */
uint32_t wsload_worker_count(const wsload_worker_t *self);

#endif

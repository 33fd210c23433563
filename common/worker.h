/*  worker.h - the runtime every Parley worker process is built on.

    A worker serves one service. The runtime connects a DEALER socket to the broker, announces
    READY with the service name and how many requests it may hold at once (capacity), sends
    HEARTBEATs carrying the worker's counters, and dispatches each REQUEST by its message type to
    the handler registered for that type. When the broker stops answering (or says DISCONNECT)
    it reconnects with jittered exponential backoff and announces READY again. On SIGTERM or
    SIGINT it drains: tells the broker DRAIN, finishes what it holds (up to the drain timeout),
    says DISCONNECT and returns from worker_run().

    Handlers run on the worker's one thread, in its zloop. A handler receives the request and
    owns it: it must answer exactly once with worker_reply() or worker_reply_error(), at once or
    later (for example from a timer or a socket handler it registered on worker_loop()). */
#ifndef WORKER_H
#define WORKER_H

#include "bus_link.h"
#include "config.h"

#include <czmq.h>
#include <stdint.h>

typedef struct {
    bus_link_config_t link;     /* connection to the broker (its own option table) */
    char events_in[256];        /* the broker's XSUB endpoint, for worker_publish */
    int64_t capacity;           /* requests held at once */
    int64_t drain_timeout_ms;
    char log_level[16];
} worker_config_t;

/* The worker's own options; a worker's main loads these and bus_link_config_options (into
   config.link). */
extern const config_option_t worker_config_options[];
extern const size_t worker_config_option_count;

typedef struct worker_t worker_t;
typedef struct worker_request_t worker_request_t;

/* Called for each request of the registered type. Takes ownership of request. */
typedef void(worker_handler_fn)(worker_t *worker, worker_request_t *request, void *arg);

/* Returns a new worker for service (config is copied), not yet connected, or NULL when memory
   runs out or the service name is invalid. */
worker_t *worker_new(const worker_config_t *config, const char *service);

/* Frees everything, including requests still held; sets *self_p to NULL. Accepts NULL. */
void worker_destroy(worker_t **self_p);

/* Routes requests of message type `type` to fn. Returns 0, or -1 when type is invalid or
   already registered. */
int worker_on(worker_t *self, const char *type, worker_handler_fn *fn, void *arg);

/* This process's instance name as the broker's stats show it (borrowed). */
const char *worker_instance(const worker_t *self);

/* The worker's loop, for handlers that need their own timers or sockets (borrowed). */
zloop_t *worker_loop(worker_t *self);

/* A counter that rides in the worker's heartbeats (see counter_set.h). Never NULL. */
uint64_t *worker_counter(worker_t *self, const char *name);

/* Publishes an event on topic (see proto_event_publish); payload is copied. Fire and forget:
   returns 0, or -1 when it could not be queued (counted in "events_dropped"). */
int worker_publish(worker_t *self, const char *topic, const char *type, const uint8_t *payload,
                   size_t size);

/* worker_publish on behalf of origin (a NAME: the process the event is about, which may
   drop it as its own); NULL: this worker, as worker_publish. */
int worker_publish_as(worker_t *self, const char *origin, const char *topic, const char *type,
                      const uint8_t *payload, size_t size);

/* Connects and serves until a signal arrives on signal_fd (see signals.h), then drains.
   Returns 0 after a clean drain, 1 when the drain timed out with requests still held. */
int worker_run(worker_t *self, int signal_fd);

/* What a request asks; pointers are valid until it is answered. */
const char *worker_request_type(const worker_request_t *request);
const uint8_t *worker_request_payload(const worker_request_t *request, size_t *size);
int64_t worker_request_deadline_ms(const worker_request_t *request); /* zclock_mono() time */
uint32_t worker_request_attempt(const worker_request_t *request);    /* 1 on first dispatch */

/* Answers the request with payload (copied) and frees it; *request_p becomes NULL. Returns 0,
   or -1 when the answer could not be sent (the broker re-dispatches such requests). */
int worker_reply(worker_t *self, worker_request_t **request_p, const uint8_t *payload,
                 size_t size);

/* Answers with an error: code is a stable lower_snake name, message a human sentence without
   any message text or secret. Frees the request like worker_reply(). */
int worker_reply_error(worker_t *self, worker_request_t **request_p, const char *code,
                       const char *message);

#endif

/*  broker.h - parley-broker: Majordomo-style request dispatch, event forwarding, stats.

    One broker_t per process, driven by one zloop on one thread. See proto/PROTOCOL.md for what
    it speaks and broker_internal.h for what it holds. */
#ifndef BROKER_H
#define BROKER_H

#include "broker_config.h"

#include <czmq.h>

typedef struct broker_t broker_t;

/* Binds every socket named in config (copied). Returns a new broker, or NULL after logging
   which bind failed. */
broker_t *broker_new(const broker_config_t *config);

/* Closes the sockets, answers nobody further, frees everything; sets *self_p to NULL. */
void broker_destroy(broker_t **self_p);

/* Registers the broker's sockets and timers on loop (borrowed; must outlive the broker's use
   of it). Returns 0, or -1 when zloop refuses. */
int broker_attach(broker_t *self, zloop_t *loop);

/* Starts a graceful drain: new requests are left unanswered (clients resend them after they
   reconnect), queued ones are not dispatched, in-flight replies are still delivered. */
void broker_drain(broker_t *self);

/* True once draining and nothing is in flight, or the drain timeout passed. */
bool broker_drained(broker_t *self);

/* Tells every peer DISCONNECT (so they reconnect at once to a new broker). */
void broker_say_goodbye(broker_t *self);

#endif

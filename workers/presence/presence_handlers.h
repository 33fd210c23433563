/*  presence_handlers.h - the presence service's request handlers and its socket sweeper.

    presence.open / presence.heartbeat / presence.close: decode, validate, update Redis at once
    (presence_store), answer presence_done; an agent's arrival or departure re-evaluates its
    projects' availability (presence_announcer). presence.availability answers a project's
    availability and widget visibility for a customer. When Redis is unreachable the answer is the error
    `degraded`, and the worker keeps serving: the next request tries Redis again. */
#ifndef PRESENCE_HANDLERS_H
#define PRESENCE_HANDLERS_H

#include "presence_announcer.h"
#include "presence_config.h"
#include "presence_store.h"

typedef struct {
    const presence_config_t *config;
    worker_t *worker;
    presence_store_t *store;
    presence_announcer_t *announcer;
    schedule_zones_t *zones; /* validates customers' zones */
    uint64_t *updates, *unknown_sockets, *expired, *degraded, *bad_requests;
    bool sweep_continues; /* a full sweep armed its follow-up */
} presence_handlers_t;

/* Registers the handlers on worker and a sweeper timer on its loop. self must outlive the
   worker's run. Returns 0 or -1. */
int presence_handlers_register(presence_handlers_t *self);

#endif

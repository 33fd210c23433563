/*  presence_announcer.h - keeps project.<tenant>.<project> subscribers told whether anyone is
    there: evaluates a project's availability (presence_availability.h) when an agent comes or
    goes and at the schedule boundaries it predicts, and publishes a presence.availability
    event when the result changed.

    Changes are deduplicated in Redis (presence_store_swap_availability), so with several
    replicas each change is announced once. Timed evaluations are queued in Redis too
    (presence_store_schedule_check): a project with agents online, or with a schedule-driven
    widget, is evaluated again at its next schedule boundary and at least every recheck_ms (so
    configuration edits show within recheck_ms plus the config cache's TTL). Any replica's 1 s
    timer takes what is due. */
#ifndef PRESENCE_ANNOUNCER_H
#define PRESENCE_ANNOUNCER_H

#include "presence_availability.h"

#include "../../common/worker.h"

typedef struct {
    worker_t *worker;                 /* borrowed */
    presence_store_t *store;          /* borrowed */
    presence_evaluator_t *evaluator;  /* borrowed */
    int64_t recheck_ms;
    uint64_t *checks, *events, *errors;
} presence_announcer_t;

/* Registers the counters and the timer on the worker's loop. Returns 0 or -1. */
int presence_announcer_register(presence_announcer_t *self);

/* Evaluates tenant/project at now_ms for a customer in customer_zone (may be NULL), announces
   the change if there was one and queues the next timed evaluation. Returns 0 with *out
   filled, or -1 when Redis failed. */
int presence_announcer_refresh(presence_announcer_t *self, const char *tenant,
                               const char *project, const char *customer_zone, int64_t now_ms,
                               presence_availability_t *out);

/* Encodes result as a presence_availability message into encoded (initialised by the caller);
   with_visible leaves visible out when false. Returns 0 or -1 (out of memory). */
int presence_availability_encode_result(const char *tenant, const char *project,
                                        const presence_availability_t *result, bool with_visible,
                                        proto_buffer_t *encoded);

#endif

/*  presence_availability.h - is anyone there? Evaluates a project's availability and its
    widget's visibility at an instant.

    available = at least one agent online in the project (Redis, presence_store) whose online
    schedule (the agent's item in DynamoDB) is open now; an agent without a schedule counts
    whenever online. visible follows the project's visibility mode (its chat configuration):

      always          the widget always shows
      schedule        while the project's visibility_schedule is open, in the schedule's zone
      customer_local  while that schedule's weekly hours are open in the customer's own zone
                      (so it depends on the customer; without a zone it is unknown, -1)
      when_online     while the project is available

    A project without chat configuration is treated as when_online. Schedules are evaluated
    with the tz database (common/schedule.h), so DST transitions fall where the zone says.

    Configuration is read through tenant_store (Redis cache, then DynamoDB) and kept parsed in a
    small in-process cache for config_ttl_s. Reads run in the worker's request loop, so they are
    bounded: the DynamoDB client given should have a short timeout and no retries, and after a
    failed read DynamoDB is left alone for S_STORE_BACKOFF_MS while the last known values (or
    the defaults above) are used. Owns its cache; borrows everything else; one thread. */
#ifndef PRESENCE_AVAILABILITY_H
#define PRESENCE_AVAILABILITY_H

#include "../../common/schedule.h"
#include "../../common/tenant_store.h"
#include "presence_store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool available;          /* an agent online and inside their schedule */
    uint32_t agents_online;  /* agents online in the project, inside their schedule or not */
    char visibility[16];     /* the project's mode */
    int visible;             /* 1 or 0; -1 for customer_local without the customer's zone */
    int64_t next_change_ms;  /* when the result may change with no event (a schedule
                                boundary), real clock; 0 when none within the horizon */
} presence_availability_t;

typedef struct presence_evaluator_t presence_evaluator_t;

/* Returns an evaluator, or NULL when memory runs out. config_ttl_s bounds how long a parsed
   configuration is used; clock_offset_s shifts the instant at which schedules are evaluated
   (0 in production; tests use it to stand just before a DST transition). */
presence_evaluator_t *presence_evaluator_new(presence_store_t *store, tenant_store_t *tenants,
                                             schedule_zones_t *zones, int64_t config_ttl_s,
                                             int64_t clock_offset_s);
void presence_evaluator_destroy(presence_evaluator_t **self_p);

/* Evaluates tenant/project at now_ms (real clock). customer_zone may be NULL; when given it
   must be a valid zone (schedule_zones_require). Returns 0 with *out filled, or -1 when Redis
   failed (configuration failures fall back as described above). */
int presence_evaluator_run(presence_evaluator_t *self, const char *tenant, const char *project,
                           const char *customer_zone, int64_t now_ms,
                           presence_availability_t *out);

/* The part of a result that is the same for every customer, as a short string: two results
   with equal strings need no event between them. */
void presence_availability_state(const presence_availability_t *result, char *out, size_t size);

#endif

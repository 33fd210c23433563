/*  presence_store.h - presence state in Redis: websockets, agents online, and the write-behind
    queue (see common/DATA-MODEL.md for the keys and the flush protocol).

    Each operation is one Lua script or one pipeline, so it is atomic in Redis and costs one
    round trip. Borrows a redis_client_t; one store per thread. Names passed in must already be
    valid (proto NAME) and free of '|' and ',' (presence_store_name_ok). */
#ifndef PRESENCE_STORE_H
#define PRESENCE_STORE_H

#include "../../common/redis_client.h"
#include "../../proto/proto.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct presence_store_t presence_store_t;

/* Returns a store on redis (borrowed), or NULL when memory runs out. */
presence_store_t *presence_store_new(redis_client_t *redis);
void presence_store_destroy(presence_store_t **self_p);

/* True when name can be part of a key: no '|' (key separator) and no ',' (list separator). */
bool presence_store_name_ok(const char *name);

/* Each returns 0, or -1 when Redis failed or answered something unexpected (the reason is in
   redis_client_error, or "unexpected reply"). */

/* Records an opened socket (and, for an agent, that it is online in its projects). */
int presence_store_open(presence_store_t *self, const proto_presence_open_t *open, int64_t now_ms);

/* Moves last seen of each socket to now_ms; *updated counts sockets found open, the others are
   written into unknown (at most PROTO_SOCKETS_MAX names) with *unknown_count. */
int presence_store_heartbeat(presence_store_t *self, const proto_presence_heartbeat_t *beat,
                             int64_t now_ms, uint32_t *updated, char (*unknown)[PROTO_NAME_MAX + 1],
                             uint32_t *unknown_count);

/* Closes a socket; *was_open says whether it was open. When it was an agent's last socket
   serving some projects, the agent went offline there: those projects are written into left
   (at most PROTO_PROJECTS_MAX) with *left_count. */
int presence_store_close(presence_store_t *self, const char *tenant, const char *socket,
                         int64_t now_ms, bool *was_open, char (*left)[PROTO_NAME_MAX + 1],
                         uint32_t *left_count);

/* Availability side (keys avail| and availcheck in common/DATA-MODEL.md). */

/* Lists up to max account ids of the agents online in tenant/project (a new JSON array of
   strings, owned), or NULL on failure. */
json_t *presence_store_online_agents(presence_store_t *self, const char *tenant,
                                     const char *project, int max);

/* Records state as tenant/project's announced availability; *changed says whether it differs
   from the one announced before (only then is an event due, so replicas never announce one
   change twice). */
int presence_store_swap_availability(presence_store_t *self, const char *tenant,
                                     const char *project, const char *state, bool *changed);

/* Asks for tenant/project to be evaluated again at due_ms (0: no need). */
int presence_store_schedule_check(presence_store_t *self, const char *tenant, const char *project,
                                  int64_t due_ms);

/* Takes up to max projects due for evaluation at now_ms, as "tenant|project" strings (a new
   JSON array, owned), or NULL on failure. Taken projects are pushed lease_ms ahead, so a
   replica that dies before rescheduling them leaves them to the others. */
json_t *presence_store_due_checks(presence_store_t *self, int64_t now_ms, int64_t lease_ms,
                                  int max);

/* Lists up to max sockets last seen before before_ms, as "tenant|socket" strings in a new
   JSON array (owned). Returns NULL on failure. */
json_t *presence_store_stale(presence_store_t *self, int64_t before_ms, int max);

/* Flusher side. */

/* Records that flusher `instance` is alive at now_ms. */
int presence_store_flusher_beat(presence_store_t *self, const char *instance, int64_t now_ms);

/* Puts back into the dirty set every entry held by flushers silent since before_ms; returns
   how many entries were put back, or -1. */
long presence_store_reclaim(presence_store_t *self, int64_t before_ms);

/* Moves up to max entries of flush round `round` (wall-clock ms / flush interval) to instance's
   flushing hash and returns them (owned JSON array of strings), or NULL on failure. The first
   claim of a round takes everything dirty at that moment into the round; later claims of the
   round share what it left, so no entry is claimed twice in one round. Empty when the round is
   used up or a later round has begun. */
json_t *presence_store_claim(presence_store_t *self, const char *instance, int max, int64_t now_ms,
                             int64_t round);

/* Reads the current state of claimed entries and turns them into DynamoDB requests: items to
   put (*puts) and keys to delete (*deletes), both new arrays, and, in *order, the entry each
   request came from (puts first, then deletes). row_ttl_s sets expires_at. Returns 0 or -1. */
int presence_store_rows(presence_store_t *self, json_t *entries, int64_t row_ttl_s, json_t **puts,
                        json_t **deletes, json_t **order);

/* Entries written: leave instance's flushing hash. */
int presence_store_ack(presence_store_t *self, const char *instance, json_t *entries);

/* Entries not written: back to the dirty set, out of the flushing hash. */
int presence_store_giveback(presence_store_t *self, const char *instance, json_t *entries);

/* Number of dirty entries, in the current round or waiting for the next (for the lag
   counter), or -1. */
long presence_store_dirty_count(presence_store_t *self);

#endif

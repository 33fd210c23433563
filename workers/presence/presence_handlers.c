/*  presence_handlers.c - see presence_handlers.h. */
#include "presence_handlers.h"
#include "../../common/plog.h"

#include <string.h>

#define S_SWEEP_MAX 500
#define S_SWEEP_PAUSE_MS 10 /* between full sweeps */

static void s_bad_request(presence_handlers_t *self, worker_request_t *request, const char *what,
                          const proto_decode_error_t *why)
{
    char message[400];
    if (why)
        snprintf(message, sizeof message, "%s: field '%s' %s", what, why->field, why->reason);
    else
        snprintf(message, sizeof message, "%s", what);
    (*self->bad_requests)++;
    worker_reply_error(self->worker, &request, "bad_request", message);
}

static void s_degraded(presence_handlers_t *self, worker_request_t *request)
{
    (*self->degraded)++;
    worker_reply_error(self->worker, &request, "degraded",
                       "presence store (Redis) unavailable; retry shortly");
}

/* Answers presence_done. */
static void s_done(presence_handlers_t *self, worker_request_t *request, uint32_t updated,
                   char (*unknown)[PROTO_NAME_MAX + 1], uint32_t unknown_count)
{
    proto_presence_done_t *done = calloc(1, sizeof *done);
    if (!done) {
        worker_reply_error(self->worker, &request, "internal", "out of memory");
        return;
    }
    done->updated = updated;
    if (unknown_count) {
        done->has_unknown = true;
        done->unknown_count = unknown_count;
        memcpy(done->unknown, unknown, unknown_count * sizeof *unknown);
    }
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_presence_done_encode(done, &encoded) == 0)
        worker_reply(self->worker, &request, encoded.data, encoded.size);
    else
        worker_reply_error(self->worker, &request, "internal", "out of memory");
    proto_buffer_release(&encoded);
    free(done);
}

/* Re-evaluates the projects an agent came to or left (announcing what changed). */
static void s_agent_moved(presence_handlers_t *self, const char *tenant,
                          char (*projects)[PROTO_NAME_MAX + 1], uint32_t count, int64_t now_ms)
{
    for (uint32_t i = 0; i < count; i++) {
        presence_availability_t result;
        presence_announcer_refresh(self->announcer, tenant, projects[i], NULL, now_ms, &result);
    }
}

static void s_on_open(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    presence_handlers_t *self = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_presence_open_t open;
    proto_decode_error_t why;
    if (proto_presence_open_decode(&open, payload, size, &why) != 0) {
        s_bad_request(self, request, "presence.open", &why);
        return;
    }
    bool is_agent = strcmp(open.kind, "agent") == 0;
    if (!is_agent && strcmp(open.kind, "customer") != 0) {
        s_bad_request(self, request, "presence.open: kind must be customer or agent", NULL);
        return;
    }
    if (is_agent && !open.has_account) {
        s_bad_request(self, request, "presence.open: an agent needs an account", NULL);
        return;
    }
    bool names_ok = presence_store_name_ok(open.tenant) && presence_store_name_ok(open.socket) &&
                    presence_store_name_ok(open.gateway) &&
                    (!open.has_account || presence_store_name_ok(open.account));
    for (uint32_t i = 0; open.has_projects && i < open.projects_count; i++)
        names_ok = names_ok && presence_store_name_ok(open.projects[i]);
    if (!names_ok) {
        s_bad_request(self, request, "presence.open: names may not contain '|' or ','", NULL);
        return;
    }
    int64_t now = zclock_time();
    if (presence_store_open(self->store, &open, now) != 0) {
        s_degraded(self, request);
        return;
    }
    (*self->updates)++;
    s_done(self, request, 1, NULL, 0);
    if (is_agent && open.has_projects)
        s_agent_moved(self, open.tenant, open.projects, open.projects_count, now);
}

static void s_on_heartbeat(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    presence_handlers_t *self = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_presence_heartbeat_t *beat = malloc(sizeof *beat);
    char(*unknown)[PROTO_NAME_MAX + 1] = malloc(PROTO_SOCKETS_MAX * sizeof *unknown);
    proto_decode_error_t why;
    if (!beat || !unknown) {
        worker_reply_error(self->worker, &request, "internal", "out of memory");
    } else if (proto_presence_heartbeat_decode(beat, payload, size, &why) != 0) {
        s_bad_request(self, request, "presence.heartbeat", &why);
    } else {
        bool names_ok = presence_store_name_ok(beat->tenant);
        for (uint32_t i = 0; i < beat->sockets_count; i++)
            names_ok = names_ok && presence_store_name_ok(beat->sockets[i]);
        uint32_t updated = 0, unknown_count = 0;
        if (!names_ok)
            s_bad_request(self, request, "presence.heartbeat: names may not contain '|' or ','",
                          NULL);
        else if (presence_store_heartbeat(self->store, beat, zclock_time(), &updated, unknown,
                                          &unknown_count) != 0)
            s_degraded(self, request);
        else {
            (*self->updates) += updated;
            (*self->unknown_sockets) += unknown_count;
            s_done(self, request, updated, unknown, unknown_count);
        }
    }
    free(beat);
    free(unknown);
}

static void s_on_close(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    presence_handlers_t *self = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_presence_close_t close_request;
    proto_decode_error_t why;
    if (proto_presence_close_decode(&close_request, payload, size, &why) != 0) {
        s_bad_request(self, request, "presence.close", &why);
        return;
    }
    if (!presence_store_name_ok(close_request.tenant) ||
        !presence_store_name_ok(close_request.socket)) {
        s_bad_request(self, request, "presence.close: names may not contain '|' or ','", NULL);
        return;
    }
    bool was_open = false;
    char left[PROTO_PROJECTS_MAX][PROTO_NAME_MAX + 1];
    uint32_t left_count = 0;
    int64_t now = zclock_time();
    if (presence_store_close(self->store, close_request.tenant, close_request.socket, now,
                             &was_open, left, &left_count) != 0) {
        s_degraded(self, request);
        return;
    }
    (*self->updates)++;
    s_done(self, request, was_open ? 1 : 0, NULL, 0);
    s_agent_moved(self, close_request.tenant, left, left_count, now);
}

static void s_on_availability(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)worker;
    presence_handlers_t *self = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_presence_availability_request_t ask;
    proto_decode_error_t why;
    if (proto_presence_availability_request_decode(&ask, payload, size, &why) != 0) {
        s_bad_request(self, request, "presence.availability", &why);
        return;
    }
    if (!presence_store_name_ok(ask.tenant) || !presence_store_name_ok(ask.project)) {
        s_bad_request(self, request, "presence.availability: names may not contain '|' or ','",
                      NULL);
        return;
    }
    char zone_error[200];
    if (ask.has_zone &&
        schedule_zones_require(self->zones, ask.zone, zone_error, sizeof zone_error) != 0) {
        char message[300];
        snprintf(message, sizeof message, "presence.availability: zone: %s", zone_error);
        s_bad_request(self, request, message, NULL);
        return;
    }
    presence_availability_t result;
    if (presence_announcer_refresh(self->announcer, ask.tenant, ask.project,
                                   ask.has_zone ? ask.zone : NULL, zclock_time(), &result) != 0) {
        s_degraded(self, request);
        return;
    }
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (presence_availability_encode_result(ask.tenant, ask.project, &result, true, &encoded) == 0)
        worker_reply(self->worker, &request, encoded.data, encoded.size);
    else
        worker_reply_error(self->worker, &request, "internal", "out of memory");
    proto_buffer_release(&encoded);
}

static int s_on_sweep(zloop_t *loop, int timer_id, void *arg);

/* The follow-up of a full sweep. */
static int s_on_sweep_more(zloop_t *loop, int timer_id, void *arg)
{
    ((presence_handlers_t *)arg)->sweep_continues = false;
    return s_on_sweep(loop, timer_id, arg);
}

/* Closes sockets whose last seen stopped moving (their gateway died), S_SWEEP_MAX at a time;
   a full batch is followed by the next one S_SWEEP_PAUSE_MS later rather than at the next
   tick, so that a dead gateway's 20,000 sockets are closed in seconds, not minutes (500
   every 5 s took 200 s, over three times the grace), while requests still get turns. A sweep
   that could not close one (Redis failing) waits for the tick. */
static int s_on_sweep(zloop_t *loop, int timer_id, void *arg)
{
    (void)timer_id;
    presence_handlers_t *self = arg;
    int64_t now = zclock_time();
    json_t *stale = presence_store_stale(self->store, now - self->config->grace_ms, S_SWEEP_MAX);
    size_t i, failed = 0;
    json_t *member;
    json_array_foreach(stale, i, member)
    {
        char buf[2 * (PROTO_NAME_MAX + 1) + 2];
        snprintf(buf, sizeof buf, "%s", json_string_value(member));
        char *bar = strchr(buf, '|');
        if (!bar)
            continue;
        *bar = '\0';
        bool was_open;
        char left[PROTO_PROJECTS_MAX][PROTO_NAME_MAX + 1];
        uint32_t left_count = 0;
        int rc = presence_store_close(self->store, buf, bar + 1, now, &was_open, left,
                                      &left_count);
        if (rc != 0)
            failed++;
        if (rc == 0 && was_open) {
            (*self->expired)++;
            s_agent_moved(self, buf, left, left_count, now);
        }
    }
    if (json_array_size(stale))
        plog_info("sockets_expired", "count=%zu", json_array_size(stale));
    if (json_array_size(stale) == S_SWEEP_MAX && failed == 0 && !self->sweep_continues &&
        zloop_timer(loop, S_SWEEP_PAUSE_MS, 1, s_on_sweep_more, self) >= 0)
        self->sweep_continues = true;
    json_decref(stale);
    return 0;
}

int presence_handlers_register(presence_handlers_t *self)
{
    self->updates = worker_counter(self->worker, "updates_received");
    self->unknown_sockets = worker_counter(self->worker, "unknown_sockets");
    self->expired = worker_counter(self->worker, "sockets_expired");
    self->degraded = worker_counter(self->worker, "redis_errors");
    self->bad_requests = worker_counter(self->worker, "bad_requests");
    int64_t sweep_ms = self->config->grace_ms / 4;
    if (sweep_ms > 5000)
        sweep_ms = 5000;
    if (worker_on(self->worker, "presence.open", s_on_open, self) != 0 ||
        worker_on(self->worker, "presence.heartbeat", s_on_heartbeat, self) != 0 ||
        worker_on(self->worker, "presence.close", s_on_close, self) != 0 ||
        worker_on(self->worker, "presence.availability", s_on_availability, self) != 0 ||
        zloop_timer(worker_loop(self->worker), (size_t)sweep_ms, 0, s_on_sweep, self) < 0)
        return -1;
    return 0;
}

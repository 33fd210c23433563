/*  presence_announcer.c - see presence_announcer.h. */
#include "presence_announcer.h"
#include "../../common/plog.h"

#include <string.h>

#define S_TICK_MS 1000
#define S_DUE_MAX 200       /* projects evaluated per tick */
#define S_LEASE_MS 30000    /* a taken project waits this long for its evaluator */

int presence_availability_encode_result(const char *tenant, const char *project,
                                        const presence_availability_t *result, bool with_visible,
                                        proto_buffer_t *encoded)
{
    proto_presence_availability_t message = {
        .available = result->available,
        .agents_online = result->agents_online,
        .has_visible = with_visible && result->visible >= 0,
        .visible = result->visible == 1,
        .has_next_change_ms = result->next_change_ms > 0,
        .next_change_ms = (uint64_t)(result->next_change_ms > 0 ? result->next_change_ms : 0),
    };
    proto_name_set(message.tenant, tenant);
    proto_name_set(message.project, project);
    proto_name_set(message.visibility, result->visibility);
    return proto_presence_availability_encode(&message, encoded);
}

static void s_publish(presence_announcer_t *self, const char *tenant, const char *project,
                      const presence_availability_t *result)
{
    char topic[2 * PROTO_NAME_MAX + 16];
    snprintf(topic, sizeof topic, "project.%s.%s", tenant, project);
    /* visible in the customer_local mode differs per customer: not part of the event */
    bool with_visible = strcmp(result->visibility, "customer_local") != 0;
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (presence_availability_encode_result(tenant, project, result, with_visible, &encoded) ==
        0) {
        worker_publish(self->worker, topic, "presence.availability", encoded.data, encoded.size);
        (*self->events)++;
    }
    proto_buffer_release(&encoded);
}

int presence_announcer_refresh(presence_announcer_t *self, const char *tenant,
                               const char *project, const char *customer_zone, int64_t now_ms,
                               presence_availability_t *out)
{
    (*self->checks)++;
    char state[64];
    bool changed = false;
    if (presence_evaluator_run(self->evaluator, tenant, project, customer_zone, now_ms, out) !=
        0) {
        (*self->errors)++;
        return -1;
    }
    presence_availability_state(out, state, sizeof state);
    if (presence_store_swap_availability(self->store, tenant, project, state, &changed) != 0) {
        (*self->errors)++;
        return -1;
    }
    if (changed)
        s_publish(self, tenant, project, out);
    /* Nothing changes by itself while no agent is online, unless the widget follows a
       schedule: then only agents' arrivals (which refresh at once) matter. */
    bool timed = out->agents_online > 0 || strcmp(out->visibility, "schedule") == 0;
    int64_t due = 0;
    if (timed) {
        due = now_ms + self->recheck_ms;
        if (out->next_change_ms > 0 && out->next_change_ms < due)
            due = out->next_change_ms;
    }
    if (presence_store_schedule_check(self->store, tenant, project, due) != 0) {
        (*self->errors)++;
        return -1;
    }
    return 0;
}

/* Evaluates the projects whose timed evaluation is due. */
static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    presence_announcer_t *self = arg;
    int64_t now = zclock_time();
    json_t *due = presence_store_due_checks(self->store, now, S_LEASE_MS, S_DUE_MAX);
    if (!due) {
        (*self->errors)++;
        return 0;
    }
    size_t i;
    json_t *member;
    json_array_foreach(due, i, member)
    {
        char buf[2 * (PROTO_NAME_MAX + 1) + 2];
        snprintf(buf, sizeof buf, "%s", json_string_value(member));
        char *bar = strchr(buf, '|');
        if (!bar)
            continue;
        *bar = '\0';
        presence_availability_t result;
        if (presence_announcer_refresh(self, buf, bar + 1, NULL, now, &result) != 0)
            break; /* Redis trouble: the rest stays leased and comes back */
    }
    json_decref(due);
    return 0;
}

int presence_announcer_register(presence_announcer_t *self)
{
    self->checks = worker_counter(self->worker, "availability_checks");
    self->events = worker_counter(self->worker, "availability_events");
    self->errors = worker_counter(self->worker, "availability_errors");
    if (!self->checks || !self->events || !self->errors)
        return -1;
    return zloop_timer(worker_loop(self->worker), S_TICK_MS, 0, s_on_tick, self) < 0 ? -1 : 0;
}

/*  gateway_ws_presence.c - tells the presence service about this gateway's websockets: open
    (agents: online in their projects), close, a heartbeat of every open socket's last seen
    per tenant in batches, and a customer's question whether anyone is there. The calls carry
    their notes like the client's (gateway_ws.c delivers the answers). See
    gateway_ws_internal.h. */
#include "../common/plog.h"
#include "gateway_ws_internal.h"

#include <stdlib.h>
#include <string.h>

/* The socket's name for presence: unique across gateways. */
static void s_socket_name(const gateway_ws_t *self, const gw_socket_t *socket, char *out,
                          size_t size)
{
    snprintf(out, size, "%.40s-%llu", self->instance, (unsigned long long)socket->id);
}

static void s_presence_call(gateway_ws_t *self, gw_socket_t *socket, const char *type,
                            const proto_buffer_t *payload, gw_call_kind_t kind)
{
    gateway_call_t *call = gateway_call_new("presence", type, payload->data, payload->size,
                                            (uint32_t)self->config->request_timeout_ms);
    gw_pending_t note = {.socket = socket ? socket->id : 0, .kind = kind};
    if (call)
        gw_call(self, &call, &note);
}

/* Tells presence the socket is open (agents: online in their projects). */
void gw_presence_open(gateway_ws_t *self, gw_socket_t *socket)
{
    proto_presence_open_t open = {.has_account = true,
                                  .has_projects = socket->project_count > 0,
                                  .projects_count = socket->project_count};
    proto_name_set(open.tenant, socket->tenant);
    s_socket_name(self, socket, open.socket, sizeof open.socket);
    proto_name_set(open.gateway, self->instance);
    proto_name_set(open.kind, socket->kind);
    proto_name_set(open.account, socket->account);
    for (uint32_t i = 0; i < socket->project_count; i++)
        memcpy(open.projects[i], socket->projects[i], sizeof open.projects[i]);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_presence_open_encode(&open, &encoded) == 0)
        s_presence_call(self, socket, "presence.open", &encoded, CALL_PRESENCE);
    proto_buffer_release(&encoded);
}

void gw_presence_close(gateway_ws_t *self, gw_socket_t *socket)
{
    if (!self->bus || !socket->authenticated)
        return;
    proto_presence_close_t close_request;
    proto_name_set(close_request.tenant, socket->tenant);
    s_socket_name(self, socket, close_request.socket, sizeof close_request.socket);
    proto_name_set(close_request.gateway, self->instance);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_presence_close_encode(&close_request, &encoded) == 0)
        s_presence_call(self, NULL, "presence.close", &encoded, CALL_PRESENCE);
    proto_buffer_release(&encoded);
}

/* Asks presence whether anyone is there for the customer's project. */
void gw_availability(gateway_ws_t *self, gw_socket_t *socket)
{
    proto_presence_availability_request_t ask = {0};
    proto_name_set(ask.tenant, socket->tenant);
    proto_name_set(ask.project, socket->project);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_presence_availability_request_encode(&ask, &encoded) == 0)
        s_presence_call(self, socket, "presence.availability", &encoded, CALL_AVAILABILITY);
    proto_buffer_release(&encoded);
}

/* Sends one presence.heartbeat (beat is reset after). */
static void s_heartbeat_send(gateway_ws_t *self, proto_presence_heartbeat_t *beat)
{
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_presence_heartbeat_encode(beat, &encoded) == 0)
        s_presence_call(self, NULL, "presence.heartbeat", &encoded, CALL_PRESENCE);
    proto_buffer_release(&encoded);
    beat->sockets_count = 0;
}

/* One tenant's authenticated sockets, gathered by gw_on_heartbeat_timer's one pass. */
typedef struct {
    gw_socket_t **sockets; /* borrowed */
    size_t count, capacity;
} s_tenant_sockets_t;

static void s_tenant_sockets_free(void **item)
{
    s_tenant_sockets_t *group = *item;
    if (group) {
        free(group->sockets);
        free(group);
        *item = NULL;
    }
}

/* Adds socket to its tenant's group in groups. Returns 0, or -1 when out of memory. */
static int s_group_by_tenant(zhashx_t *groups, gw_socket_t *socket)
{
    s_tenant_sockets_t *group = zhashx_lookup(groups, socket->tenant);
    if (!group) {
        group = calloc(1, sizeof *group);
        if (!group || zhashx_insert(groups, socket->tenant, group) != 0) {
            free(group);
            return -1;
        }
    }
    if (group->count == group->capacity) {
        size_t capacity = group->capacity ? group->capacity * 2 : 16;
        gw_socket_t **grown = realloc(group->sockets, capacity * sizeof *grown);
        if (!grown)
            return -1;
        group->sockets = grown;
        group->capacity = capacity;
    }
    group->sockets[group->count++] = socket;
    return 0;
}

/* Sends every open socket's last seen to presence: per tenant, in batches. One pass groups
   the sockets by tenant first (a gateway serves many tenants: a pass per tenant made this
   tenants x sockets, which at 20,000 sockets in hundreds of tenants stalls the lws thread
   for a noticeable time every interval); how long it took is the presence_heartbeat_us
   counter. */
void gw_on_heartbeat_timer(lws_sorted_usec_list_t *sul)
{
    gateway_ws_t *self = lws_container_of(sul, gateway_ws_t, heartbeat);
    int64_t started_us = zclock_usecs();
    proto_presence_heartbeat_t *beat = calloc(1, sizeof *beat);
    zhashx_t *groups = zhashx_new();
    size_t missed = 0;
    if (groups)
        zhashx_set_destructor(groups, s_tenant_sockets_free);
    for (gw_socket_t *s = zhashx_first(self->sockets); beat && groups && s;
         s = zhashx_next(self->sockets))
        if (s->authenticated && s_group_by_tenant(groups, s) != 0)
            missed++;
    for (s_tenant_sockets_t *group = groups ? zhashx_first(groups) : NULL; beat && group;
         group = zhashx_next(groups)) {
        memset(beat, 0, sizeof *beat);
        proto_name_set(beat->tenant, zhashx_cursor(groups));
        proto_name_set(beat->gateway, self->instance);
        for (size_t i = 0; i < group->count; i++) {
            s_socket_name(self, group->sockets[i], beat->sockets[beat->sockets_count],
                          sizeof beat->sockets[0]);
            if (++beat->sockets_count == PROTO_SOCKETS_MAX)
                s_heartbeat_send(self, beat);
        }
        if (beat->sockets_count)
            s_heartbeat_send(self, beat);
    }
    if (!beat || !groups || missed)
        plog_warn("presence_heartbeat_incomplete", "reason=out_of_memory sockets_missed=%zu",
                  beat && groups ? missed : zhashx_size(self->sockets));
    zhashx_destroy(&groups);
    free(beat);
    self->presence_heartbeat_us = (uint64_t)(zclock_usecs() - started_us);
    if (self->context)
        lws_sul_schedule(self->context, 0, &self->heartbeat, gw_on_heartbeat_timer,
                         self->config->presence_heartbeat_ms * LWS_US_PER_MS);
}

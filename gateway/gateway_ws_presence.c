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

/* Sends every open socket's last seen to presence: per tenant, in batches. */
void gw_on_heartbeat_timer(lws_sorted_usec_list_t *sul)
{
    gateway_ws_t *self = lws_container_of(sul, gateway_ws_t, heartbeat);
    proto_presence_heartbeat_t *beat = calloc(1, sizeof *beat);
    zhashx_t *tenants = zhashx_new();
    for (gw_socket_t *s = zhashx_first(self->sockets); tenants && s;
         s = zhashx_next(self->sockets))
        if (s->authenticated)
            zhashx_update(tenants, s->tenant, (void *)1);
    for (void *v = tenants ? zhashx_first(tenants) : NULL; beat && v; v = zhashx_next(tenants)) {
        const char *tenant = zhashx_cursor(tenants);
        memset(beat, 0, sizeof *beat);
        proto_name_set(beat->tenant, tenant);
        proto_name_set(beat->gateway, self->instance);
        for (gw_socket_t *s = zhashx_first(self->sockets); s; s = zhashx_next(self->sockets)) {
            if (!s->authenticated || strcmp(s->tenant, tenant) != 0)
                continue;
            s_socket_name(self, s, beat->sockets[beat->sockets_count], sizeof beat->sockets[0]);
            if (++beat->sockets_count == PROTO_SOCKETS_MAX)
                s_heartbeat_send(self, beat);
        }
        if (beat->sockets_count)
            s_heartbeat_send(self, beat);
    }
    zhashx_destroy(&tenants);
    free(beat);
    if (self->context)
        lws_sul_schedule(self->context, 0, &self->heartbeat, gw_on_heartbeat_timer,
                         self->config->presence_heartbeat_ms * LWS_US_PER_MS);
}

/*  broker.c - the broker's sockets, its loop handlers and the commands peers send it.

    Reads every message on the ROUTER socket, checks it (proto_envelope_parse + the command's
    decoder), and hands valid ones to broker_dispatch.c; bad ones are counted by reason, logged
    under a rate limit and dropped, and the sender of a message from another protocol version is
    told so. Nothing a peer sends can stop the broker serving the others. */
#include "broker_internal.h"
#include "broker_http.h"
#include "../common/plog.h"

#include <inttypes.h>

#define S_BATCH 512 /* messages read per wake-up before the loop looks at other sockets */

static size_t s_id_hash(const void *key)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static int s_id_compare(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

static void s_service_free(void **item)
{
    broker_service_destroy((broker_service_t **)item);
}

void broker_warn_input(broker_t *self, const char *event, const char *fields)
{
    int64_t now = zclock_mono();
    if (now - self->log_window_ms >= 1000) {
        if (self->counters.log_suppressed && self->log_window_count > 20)
            plog_warn("warnings_suppressed", "total=%" PRIu64, self->counters.log_suppressed);
        self->log_window_ms = now;
        self->log_window_count = 0;
    }
    if (++self->log_window_count > 20) {
        self->counters.log_suppressed++;
        return;
    }
    plog_warn(event, "%s", fields);
}

static zsock_t *s_bind(int type, const char *endpoint, int64_t max_bytes)
{
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    /* Transport guard: ZeroMQ drops a peer that sends more than this. The protocol limit
       (max_bytes) is enforced, counted and logged by us; this one only keeps memory bounded. */
    zsock_set_maxmsgsize(sock, (int)(max_bytes * 4 > INT32_MAX ? INT32_MAX : max_bytes * 4));
    zsock_set_rcvhwm(sock, 100000);
    zsock_set_sndhwm(sock, 100000);
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(sock, 1);
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        plog_error("bind_failed", "endpoint=%s errno=%d error=\"%s\"", endpoint, errno,
                   zmq_strerror(errno));
        zsock_destroy(&sock);
    }
    return sock;
}

broker_t *broker_new(const broker_config_t *config)
{
    broker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    self->next_request_id = 1;
    self->started_ms = zclock_mono();
    self->started_wall_ms = zclock_time();
    self->peers = zhashx_new();
    self->services = zhashx_new();
    self->requests = zhashx_new();
    self->deadlines = deadline_heap_new();
    if (!self->peers || !self->services || !self->requests || !self->deadlines)
        goto fail;
    zhashx_set_destructor(self->peers, broker_peer_free);
    zhashx_set_destructor(self->services, s_service_free);
    zhashx_set_key_hasher(self->requests, s_id_hash);
    zhashx_set_key_comparator(self->requests, s_id_compare);
    zhashx_set_key_duplicator(self->requests, NULL);
    zhashx_set_key_destructor(self->requests, NULL);
    self->router = s_bind(ZMQ_ROUTER, config->endpoint, config->max_frame_bytes);
    self->events_in = s_bind(ZMQ_XSUB, config->events_in, config->max_frame_bytes);
    self->events_out = s_bind(ZMQ_XPUB, config->events_out, config->max_frame_bytes);
    if (!self->router || !self->events_in || !self->events_out)
        goto fail;
    self->http = broker_http_new(self, config->stats_address);
    if (!self->http)
        goto fail;
    plog_info("broker_started", "endpoint=%s events_in=%s events_out=%s stats=http://%s/stats",
              config->endpoint, config->events_in, config->events_out, config->stats_address);
    return self;
fail:
    broker_destroy(&self);
    return NULL;
}

void broker_destroy(broker_t **self_p)
{
    broker_t *self = *self_p;
    if (!self)
        return;
    if (self->requests) {
        for (broker_request_t *r = zhashx_first(self->requests); r;
             r = zhashx_next(self->requests)) {
            zmq_msg_close(&r->payload);
            free(r);
        }
        zhashx_destroy(&self->requests);
    }
    zhashx_destroy(&self->peers);
    zhashx_destroy(&self->services);
    deadline_heap_destroy(&self->deadlines);
    broker_http_destroy((broker_http_t **)&self->http);
    zsock_destroy(&self->router);
    zsock_destroy(&self->events_in);
    zsock_destroy(&self->events_out);
    free(self);
    *self_p = NULL;
}

/* Counts and logs a message that failed a check; the sender is not told (except for a version
   mismatch) so that a hostile peer learns nothing and costs us nothing more. */
static void s_reject(broker_t *self, proto_reject_t reason, const char *detail, size_t bytes)
{
    self->counters.rejected[reason]++;
    char fields[256];
    snprintf(fields, sizeof fields, "socket=router reason=%s detail=\"%s\" bytes=%zu",
             proto_reject_name(reason), detail, bytes);
    broker_warn_input(self, "message_rejected", fields);
}

static void s_refresh(broker_t *self, broker_peer_t *peer)
{
    peer->expires_at_ms = zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
}

/* DISCONNECT to a peer we do not know as a worker, so that it starts over with READY. */
static void s_disconnect_unknown(broker_t *self, zmq_msg_t *route)
{
    proto_disconnect_t bye = {.has_reason = true};
    proto_name_set(bye.reason, "unknown_worker");
    PROTO_SEND_HEADER(zsock_resolve(self->router), route, PROTO_DISCONNECT, disconnect, &bye,
                      ZMQ_DONTWAIT);
}

static void s_on_ready(broker_t *self, proto_envelope_t *env, broker_peer_t *peer)
{
    proto_ready_t ready;
    proto_decode_error_t why;
    if (proto_ready_decode(&ready, env->header, env->header_size, &why) != 0) {
        s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
        return;
    }
    if (peer) {
        /* READY twice, or a client turning worker: start it over cleanly. */
        broker_warn_input(self, "duplicate_ready", "action=reset");
        broker_service_t *previous = peer->service;
        broker_peer_remove(self, peer, "duplicate_ready");
        if (previous)
            broker_dispatch(self, previous);
    }
    broker_service_t *service = broker_service_require(self, ready.service);
    if (!service) {
        broker_warn_input(self, "worker_refused", "reason=max_services");
        s_disconnect_unknown(self, env->route);
        return;
    }
    peer = broker_peer_add(self, env->route, PEER_WORKER);
    if (!peer)
        return;
    proto_name_set(peer->instance, ready.instance);
    proto_name_set(peer->role, "worker");
    peer->service = service;
    peer->capacity = ready.capacity;
    service->replicas++;
    service->last_replica_ms = zclock_mono();
    plog_info("worker_ready", "peer=%s service=%s instance=%s capacity=%u", peer->key,
              service->name, peer->instance, peer->capacity);
    broker_worker_make_available(self, peer);
    broker_dispatch(self, service);
}

static void s_on_request(broker_t *self, proto_envelope_t *env, broker_peer_t *peer)
{
    proto_request_t request;
    proto_decode_error_t why;
    if (proto_request_decode(&request, env->header, env->header_size, &why) != 0) {
        s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
        return;
    }
    if (self->draining) {
        self->counters.requests_refused_draining++;
        return; /* the client resends it to the next broker */
    }
    if (!peer && !(peer = broker_peer_add(self, env->route, PEER_CLIENT))) {
        broker_send_error(self, zmq_msg_data(env->route), zmq_msg_size(env->route), request.id,
                          "overloaded", "the broker has too many peers");
        return;
    }
    if (peer->kind != PEER_CLIENT) {
        s_reject(self, PROTO_BAD_COMMAND, "REQUEST from a worker", env->header_size);
        return;
    }
    s_refresh(self, peer);
    broker_accept_request(self, peer, &request, env->payload);
}

static void s_on_answer(broker_t *self, proto_envelope_t *env, broker_peer_t *peer)
{
    uint64_t id;
    proto_decode_error_t why;
    if (env->command == PROTO_REPLY) {
        proto_reply_t reply;
        if (proto_reply_decode(&reply, env->header, env->header_size, &why) != 0) {
            s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
            return;
        }
        id = reply.id;
    } else {
        proto_error_t error;
        if (proto_error_decode(&error, env->header, env->header_size, &why) != 0) {
            s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
            return;
        }
        id = error.id;
    }
    if (!peer || peer->kind != PEER_WORKER) {
        self->counters.late_replies++;
        s_disconnect_unknown(self, env->route);
        return;
    }
    s_refresh(self, peer);
    broker_request_t *request = zhashx_lookup(self->requests, (void *)(uintptr_t)id);
    if (!request || request->worker != peer) {
        self->counters.late_replies++;
        return;
    }
    broker_complete(self, peer, request, (proto_command_t)env->command, env->header,
                    env->header_size, env->payload);
}

static void s_on_heartbeat(broker_t *self, proto_envelope_t *env, broker_peer_t *peer)
{
    proto_heartbeat_t *heartbeat = malloc(sizeof *heartbeat); /* ~4.6 KB: not on the stack */
    proto_decode_error_t why;
    if (!heartbeat)
        return;
    if (proto_heartbeat_decode(heartbeat, env->header, env->header_size, &why) != 0) {
        s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
        free(heartbeat);
        return;
    }
    if (!peer) {
        if (heartbeat->has_kind && strcmp(heartbeat->kind, "worker") == 0)
            s_disconnect_unknown(self, env->route); /* we forgot it: make it READY again */
        else if ((peer = broker_peer_add(self, env->route, PEER_CLIENT)))
            plog_info("client_connected", "peer=%s instance=%s kind=%s", peer->key,
                      heartbeat->has_instance ? heartbeat->instance : "-",
                      heartbeat->has_kind ? heartbeat->kind : "-");
    }
    if (peer) {
        s_refresh(self, peer);
        if (heartbeat->has_instance)
            proto_name_set(peer->instance, heartbeat->instance);
        if (heartbeat->has_kind && peer->kind == PEER_CLIENT)
            proto_name_set(peer->role, heartbeat->kind);
        if (heartbeat->has_counters) {
            memcpy(peer->counters, heartbeat->counters,
                   heartbeat->counters_count * sizeof(proto_counter_t));
            peer->counter_count = heartbeat->counters_count;
        }
    }
    free(heartbeat);
}

static void s_on_disconnect(broker_t *self, proto_envelope_t *env, broker_peer_t *peer)
{
    proto_disconnect_t bye;
    proto_decode_error_t why;
    if (proto_disconnect_decode(&bye, env->header, env->header_size, &why) != 0) {
        s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
        return;
    }
    if (!peer)
        return;
    broker_service_t *service = peer->service;
    broker_peer_remove(self, peer, bye.has_reason ? bye.reason : "disconnect");
    if (service)
        broker_dispatch(self, service);
}

static void s_on_drain(broker_t *self, proto_envelope_t *env, broker_peer_t *peer)
{
    proto_drain_t drain;
    proto_decode_error_t why;
    if (proto_drain_decode(&drain, env->header, env->header_size, &why) != 0) {
        s_reject(self, PROTO_BAD_HEADER, why.reason, env->header_size);
        return;
    }
    if (!peer || peer->kind != PEER_WORKER)
        return;
    s_refresh(self, peer);
    peer->draining = true;
    broker_worker_make_unavailable(peer);
    plog_info("worker_draining", "peer=%s service=%s inflight=%zu", peer->key,
              peer->service->name, zlistx_size(peer->inflight));
}

/* Handles one checked message. */
static void s_handle(broker_t *self, proto_envelope_t *env)
{
    broker_peer_t *peer = broker_peer_lookup(self, env->route);
    switch (env->command) {
    case PROTO_READY: s_on_ready(self, env, peer); break;
    case PROTO_REQUEST: s_on_request(self, env, peer); break;
    case PROTO_REPLY:
    case PROTO_ERROR: s_on_answer(self, env, peer); break;
    case PROTO_HEARTBEAT: s_on_heartbeat(self, env, peer); break;
    case PROTO_DISCONNECT: s_on_disconnect(self, env, peer); break;
    case PROTO_DRAIN: s_on_drain(self, env, peer); break;
    default: s_reject(self, PROTO_BAD_COMMAND, "command not accepted by the broker", 0);
    }
}

static int s_on_router(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    broker_t *self = arg;
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH; i++) {
        if (proto_frames_recv(&frames, zsock_resolve(sock), ZMQ_DONTWAIT) != 0)
            break;
        proto_envelope_t env;
        proto_reject_t reason =
            proto_envelope_parse(&frames, true, (size_t)self->config.max_frame_bytes, &env);
        if (reason == PROTO_OK)
            s_handle(self, &env);
        else {
            s_reject(self, reason, proto_reject_name(reason), frames.bytes);
            if (reason == PROTO_BAD_VERSION && frames.count > 0)
                broker_send_error(self, zmq_msg_data(&frames.frames[0]),
                                  zmq_msg_size(&frames.frames[0]), 0, "unsupported_version",
                                  "this broker speaks " PROTO_SIGNATURE " only");
        }
        proto_frames_close(&frames);
    }
    return 0;
}

static int s_on_heartbeat_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    broker_t *self = arg;
    broker_heartbeat_peers(self, zclock_mono());
    broker_http_sweep(self->http);
    return 0;
}

static int s_on_deadline_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    broker_expire_requests((broker_t *)arg, zclock_mono());
    return 0;
}

static int s_on_events_in(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    return broker_events_forward((broker_t *)arg);
}

static int s_on_events_out(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    return broker_events_subscriptions((broker_t *)arg);
}

int broker_attach(broker_t *self, zloop_t *loop)
{
    if (zloop_reader(loop, self->router, s_on_router, self) ||
        zloop_reader(loop, self->events_in, s_on_events_in, self) ||
        zloop_reader(loop, self->events_out, s_on_events_out, self) ||
        broker_http_attach(self->http, loop) ||
        zloop_timer(loop, (size_t)self->config.heartbeat_ms, 0, s_on_heartbeat_timer, self) < 0 ||
        zloop_timer(loop, 5, 0, s_on_deadline_timer, self) < 0)
        return -1;
    return 0;
}

void broker_drain(broker_t *self)
{
    if (self->draining)
        return;
    self->draining = true;
    self->drain_until_ms = zclock_mono() + self->config.drain_timeout_ms;
    plog_info("broker_draining", "inflight=%zu queued=%zu", broker_inflight_total(self),
              zhashx_size(self->requests) - broker_inflight_total(self));
}

bool broker_drained(broker_t *self)
{
    return self->draining &&
           (broker_inflight_total(self) == 0 || zclock_mono() >= self->drain_until_ms);
}

void broker_say_goodbye(broker_t *self)
{
    proto_disconnect_t bye = {.has_reason = true};
    proto_name_set(bye.reason, "broker_stopping");
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_DISCONNECT);
    proto_disconnect_encode(&bye, &envelope);
    for (broker_peer_t *peer = zhashx_first(self->peers); peer; peer = zhashx_next(self->peers))
        broker_send_to_peer(self, peer, &envelope);
    proto_buffer_release(&envelope);
    plog_info("broker_stopped", "peers=%zu", zhashx_size(self->peers));
}

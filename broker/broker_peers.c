/*  broker_peers.c - the workers and clients connected to the broker: registry, availability,
    heartbeats and expiry. Peers are owned by broker->peers. */
#include "broker_internal.h"
#include "../common/plog.h"

void broker_route_key(char *out, const uint8_t *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * size] = '\0';
}

broker_peer_t *broker_peer_lookup(broker_t *self, zmq_msg_t *route)
{
    char key[2 * BROKER_ROUTE_MAX + 1];
    size_t size = zmq_msg_size(route);
    if (size > BROKER_ROUTE_MAX)
        return NULL;
    broker_route_key(key, zmq_msg_data(route), size);
    return zhashx_lookup(self->peers, key);
}

void broker_peer_free(void **item)
{
    broker_peer_t *peer = *item;
    if (!peer)
        return;
    zlistx_destroy(&peer->inflight);
    free(peer);
    *item = NULL;
}

broker_peer_t *broker_peer_add(broker_t *self, zmq_msg_t *route, broker_peer_kind_t kind)
{
    size_t size = zmq_msg_size(route);
    if (size == 0 || size > BROKER_ROUTE_MAX)
        return NULL;
    if (zhashx_size(self->peers) >= (size_t)self->config.max_peers) {
        broker_warn_input(self, "peer_refused", "reason=max_peers");
        return NULL;
    }
    broker_peer_t *peer = calloc(1, sizeof *peer);
    if (!peer)
        return NULL;
    memcpy(peer->route, zmq_msg_data(route), size);
    peer->route_size = size;
    broker_route_key(peer->key, peer->route, size);
    peer->kind = kind;
    peer->connected_at_ms = zclock_mono();
    peer->expires_at_ms = peer->connected_at_ms + self->config.heartbeat_ms * self->config.liveness;
    if (kind == PEER_WORKER && !(peer->inflight = zlistx_new())) {
        free(peer);
        return NULL;
    }
    zhashx_insert(self->peers, peer->key, peer);
    if (kind == PEER_WORKER)
        self->workers++;
    else
        self->clients++;
    return peer;
}

void broker_worker_make_available(broker_t *self, broker_peer_t *worker)
{
    (void)self;
    if (worker->available_handle || worker->draining || !worker->service)
        return;
    if (zlistx_size(worker->inflight) < worker->capacity)
        worker->available_handle = zlistx_add_end(worker->service->available, worker);
}

void broker_worker_make_unavailable(broker_peer_t *worker)
{
    if (worker->available_handle) {
        zlistx_delete(worker->service->available, worker->available_handle);
        worker->available_handle = NULL;
    }
}

void broker_peer_remove(broker_t *self, broker_peer_t *peer, const char *why)
{
    plog_info("peer_removed", "peer=%s kind=%s instance=%s service=%s reason=%s", peer->key,
              peer->kind == PEER_WORKER ? "worker" : "client",
              *peer->instance ? peer->instance : "-", peer->service ? peer->service->name : "-",
              why);
    if (peer->kind == PEER_WORKER) {
        broker_service_t *service = peer->service;
        broker_worker_make_unavailable(peer);
        broker_requeue_worker(self, peer);
        if (service) {
            service->replicas--;
            if (service->replicas == 0)
                service->last_replica_ms = zclock_mono();
        }
        self->workers--;
    } else
        self->clients--;
    zhashx_delete(self->peers, peer->key);
}

int broker_send_to_peer(broker_t *self, broker_peer_t *peer, const proto_buffer_t *envelope)
{
    zmq_msg_t route;
    zmq_msg_init_size(&route, peer->route_size);
    memcpy(zmq_msg_data(&route), peer->route, peer->route_size);
    int rc = proto_envelope_send(zsock_resolve(self->router), &route, envelope, NULL,
                                 ZMQ_DONTWAIT);
    zmq_msg_close(&route);
    return rc;
}

void broker_heartbeat_peers(broker_t *self, int64_t now_ms)
{
    proto_heartbeat_t heartbeat = {0};
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_HEARTBEAT);
    proto_heartbeat_encode(&heartbeat, &envelope);
    /* Collect the dead first: removing while iterating a zhashx is not allowed. */
    zlistx_t *dead = zlistx_new();
    for (broker_peer_t *peer = zhashx_first(self->peers); peer; peer = zhashx_next(self->peers)) {
        if (peer->expires_at_ms < now_ms)
            zlistx_add_end(dead, peer);
        else
            broker_send_to_peer(self, peer, &envelope);
    }
    for (broker_peer_t *peer = zlistx_first(dead); peer; peer = zlistx_next(dead)) {
        broker_service_t *service = peer->service;
        self->counters.peers_expired++;
        broker_peer_remove(self, peer, "heartbeat_expired");
        if (service)
            broker_dispatch(self, service);
    }
    zlistx_destroy(&dead);
    proto_buffer_release(&envelope);
}

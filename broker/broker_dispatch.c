/*  broker_dispatch.c - services, their queues and the life of a request: accepted, queued,
    dispatched to an idle replica, answered (or timed out, or re-dispatched when its replica
    dies). Requests are owned by broker->requests; queues and in-flight lists reference them. */
#include "broker_internal.h"
#include "../common/plog.h"

#include <inttypes.h>

broker_service_t *broker_service_require(broker_t *self, const char *name)
{
    broker_service_t *service = zhashx_lookup(self->services, name);
    if (service)
        return service;
    if (zhashx_size(self->services) >= (size_t)self->config.max_services)
        return NULL;
    service = calloc(1, sizeof *service);
    if (!service)
        return NULL;
    proto_name_set(service->name, name);
    service->queue = zlistx_new();
    service->available = zlistx_new();
    service->order_keys = zhashx_new();
    service->latency = latency_histogram_new();
    service->last_replica_ms = zclock_mono();
    if (!service->queue || !service->available || !service->latency || !service->order_keys) {
        broker_service_destroy(&service);
        return NULL;
    }
    zhashx_insert(self->services, service->name, service);
    plog_info("service_added", "service=%s", service->name);
    return service;
}

void broker_service_destroy(broker_service_t **self_p)
{
    broker_service_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy(&self->queue);
    zlistx_destroy(&self->available);
    zhashx_destroy(&self->order_keys); /* emptied by its requests first */
    latency_histogram_destroy(&self->latency);
    free(self);
    *self_p = NULL;
}

int broker_send_error(broker_t *self, const uint8_t *route, size_t route_size, uint64_t id,
                      const char *code, const char *message)
{
    proto_error_t error = {.id = id, .message = message, .message_len = (uint32_t)strlen(message),
                           .has_message = true};
    proto_name_set(error.code, code);
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_ERROR);
    proto_error_encode(&error, &envelope);
    zmq_msg_t frame;
    zmq_msg_init_size(&frame, route_size);
    memcpy(zmq_msg_data(&frame), route, route_size);
    int rc = proto_envelope_send(zsock_resolve(self->router), &frame, &envelope, NULL,
                                 ZMQ_DONTWAIT);
    if (rc != 0)
        self->counters.undeliverable++;
    zmq_msg_close(&frame);
    proto_buffer_release(&envelope);
    return rc;
}

/* Takes order key name for a new request of service. Returns the key, or NULL when memory
   runs out. */
static broker_order_key_t *s_order_key_take(broker_service_t *service, const char *name)
{
    broker_order_key_t *key = zhashx_lookup(service->order_keys, name);
    if (!key) {
        key = calloc(1, sizeof *key);
        if (!key)
            return NULL;
        proto_name_set(key->name, name);
        zhashx_insert(service->order_keys, key->name, key);
    }
    key->requests++;
    return key;
}

/* Puts a new request where it waits: the service's queue when it may run now (no key, or
   its key has no current request), else held behind its key. */
static void s_enqueue(broker_request_t *request)
{
    broker_service_t *service = request->service;
    broker_order_key_t *key = request->order_key;
    if (!key || !key->current) {
        if (key)
            key->current = request;
        request->list_handle = zlistx_add_end(service->queue, request);
        return;
    }
    request->held = true;
    request->held_prev = key->held_tail;
    if (key->held_tail)
        key->held_tail->held_next = request;
    else
        key->held_head = request;
    key->held_tail = request;
    service->held++;
}

/* Takes a held request out of its key's list. */
static void s_unhold(broker_request_t *request)
{
    broker_order_key_t *key = request->order_key;
    if (request->held_prev)
        request->held_prev->held_next = request->held_next;
    else
        key->held_head = request->held_next;
    if (request->held_next)
        request->held_next->held_prev = request->held_prev;
    else
        key->held_tail = request->held_prev;
    request->held_prev = request->held_next = NULL;
    request->held = false;
    request->service->held--;
}

/* Lets go of a request's order key: when it was the key's current request, the oldest held
   one becomes current and goes to the front of the queue (it is older than what came in
   since); the last request frees the key. */
static void s_order_key_release(broker_request_t *request)
{
    broker_order_key_t *key = request->order_key;
    if (!key)
        return;
    if (request->held)
        s_unhold(request);
    else if (key->current == request) {
        key->current = key->held_head;
        if (key->current) {
            s_unhold(key->current);
            key->current->list_handle = zlistx_add_start(request->service->queue, key->current);
        }
    }
    request->order_key = NULL;
    if (--key->requests == 0) {
        zhashx_delete(request->service->order_keys, key->name);
        free(key);
    }
}

size_t broker_service_queued(const broker_service_t *service)
{
    return zlistx_size(service->queue) + service->held;
}

/* Unlinks a request from whatever holds it and frees it. */
void broker_request_free(broker_t *self, broker_request_t *request)
{
    if (request->state == REQUEST_QUEUED && request->list_handle)
        zlistx_delete(request->service->queue, request->list_handle);
    else if (request->worker && request->list_handle)
        zlistx_delete(request->worker->inflight, request->list_handle);
    request->list_handle = NULL;
    s_order_key_release(request); /* may move the key's next request into the queue */
    if (request->state == REQUEST_INFLIGHT)
        request->service->inflight--;
    deadline_heap_remove(self->deadlines, &request->heap_slot);
    zmq_msg_close(&request->payload);
    zhashx_delete(self->requests, (void *)(uintptr_t)request->id);
    free(request);
}

/* Answers a request's client with an error and forgets the request. */
static void s_fail_request(broker_t *self, broker_request_t *request, const char *code,
                           const char *message)
{
    broker_send_error(self, request->client_route, request->client_route_size,
                      request->client_id, code, message);
    request->service->errors++;
    broker_request_free(self, request);
}

size_t broker_inflight_total(broker_t *self)
{
    size_t total = 0;
    for (broker_service_t *s = zhashx_first(self->services); s; s = zhashx_next(self->services))
        total += s->inflight;
    return total;
}

/* True when the service has had no replica for longer than the grace period. */
static bool s_service_gone(broker_t *self, broker_service_t *service, int64_t now_ms)
{
    return service->replicas == 0 &&
           now_ms - service->last_replica_ms > self->config.no_replica_grace_ms;
}

void broker_accept_request(broker_t *self, broker_peer_t *client, const proto_request_t *header,
                           zmq_msg_t *payload)
{
    int64_t now = zclock_mono();
    const uint8_t *route = client->route;
    size_t route_size = client->route_size;
    broker_service_t *service = zhashx_lookup(self->services, header->service);
    if (!service && now - self->started_ms <= self->config.no_replica_grace_ms)
        service = broker_service_require(self, header->service); /* workers may be on the way */
    if (!service || s_service_gone(self, service, now)) {
        char message[160];
        snprintf(message, sizeof message, "no replica of service '%s' is connected",
                 header->service);
        if (service)
            service->no_service++;
        else
            self->counters.no_service++;
        broker_send_error(self, route, route_size, header->id, "no_service", message);
        return;
    }
    service->requests++;
    if (broker_service_queued(service) >= (size_t)self->config.queue_max ||
        zhashx_size(self->requests) >= (size_t)self->config.requests_max) {
        service->overloaded++;
        broker_send_error(self, route, route_size, header->id, "overloaded",
                          "the service's queue is full; retry later");
        return;
    }
    broker_request_t *request = calloc(1, sizeof *request);
    if (!request) {
        broker_send_error(self, route, route_size, header->id, "internal", "out of memory");
        return;
    }
    request->id = self->next_request_id++;
    request->client_id = header->id;
    memcpy(request->client_route, route, route_size);
    request->client_route_size = route_size;
    proto_name_set(request->type, header->type);
    request->service = service;
    request->state = REQUEST_QUEUED;
    request->received_us = zclock_usecs();
    int64_t timeout = header->timeout_ms;
    if (timeout > self->config.max_timeout_ms)
        timeout = self->config.max_timeout_ms;
    request->deadline_ms = now + timeout;
    request->heap_slot = DEADLINE_HEAP_NONE;
    zmq_msg_init(&request->payload);
    zmq_msg_move(&request->payload, payload);
    if (header->has_order_key && !(request->order_key = s_order_key_take(service,
                                                                          header->order_key))) {
        zmq_msg_close(&request->payload);
        free(request);
        broker_send_error(self, route, route_size, header->id, "internal", "out of memory");
        return;
    }
    if (deadline_heap_push(self->deadlines, request->deadline_ms, request, &request->heap_slot)) {
        s_order_key_release(request);
        zmq_msg_close(&request->payload);
        free(request);
        broker_send_error(self, route, route_size, header->id, "internal", "out of memory");
        return;
    }
    zhashx_insert(self->requests, (void *)(uintptr_t)request->id, request);
    s_enqueue(request);
    broker_dispatch(self, service);
}

/* Sends one queued request to worker. Returns 0, or -1 when the worker cannot take it now. */
static int s_send_dispatch(broker_t *self, broker_peer_t *worker, broker_request_t *request,
                           int64_t now_ms)
{
    proto_dispatch_t dispatch = {.id = request->id, .attempt = request->attempts + 1};
    proto_name_set(dispatch.type, request->type);
    int64_t left = request->deadline_ms - now_ms;
    dispatch.timeout_ms = left < 1 ? 1 : (uint32_t)left;
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_REQUEST);
    proto_dispatch_encode(&dispatch, &envelope);
    zmq_msg_t route, payload;
    zmq_msg_init_size(&route, worker->route_size);
    memcpy(zmq_msg_data(&route), worker->route, worker->route_size);
    zmq_msg_init(&payload);
    zmq_msg_copy(&payload, &request->payload); /* shared, not copied, for large payloads */
    int rc = proto_envelope_send(zsock_resolve(self->router), &route, &envelope, &payload,
                                 ZMQ_DONTWAIT);
    zmq_msg_close(&payload);
    zmq_msg_close(&route);
    proto_buffer_release(&envelope);
    return rc;
}

void broker_dispatch(broker_t *self, broker_service_t *service)
{
    if (self->draining)
        return;
    int64_t now = zclock_mono();
    broker_request_t *request;
    while (zlistx_size(service->available) > 0 && (request = zlistx_first(service->queue))) {
        broker_peer_t *worker = zlistx_first(service->available);
        broker_worker_make_unavailable(worker);
        if (s_send_dispatch(self, worker, request, now) != 0) {
            /* Its pipe is full or it vanished: it gets nothing until it speaks again. */
            broker_warn_input(self, "dispatch_failed", "reason=peer_unreachable");
            continue;
        }
        zlistx_delete(service->queue, request->list_handle);
        request->state = REQUEST_INFLIGHT;
        request->worker = worker;
        request->attempts++;
        request->list_handle = zlistx_add_end(worker->inflight, request);
        service->inflight++;
        broker_worker_make_available(self, worker); /* back to the end: round robin */
    }
}

void broker_complete(broker_t *self, broker_peer_t *worker, broker_request_t *request,
                     proto_command_t command, const uint8_t *header, size_t header_size,
                     zmq_msg_t *payload)
{
    broker_service_t *service = request->service;
    worker->requests_done++;
    if (request->state == REQUEST_ABANDONED) {
        self->counters.late_replies++;
    } else {
        int64_t now = zclock_mono();
        uint64_t took_us = (uint64_t)(zclock_usecs() - request->received_us);
        latency_histogram_record(service->latency, took_us, now);
        if (command == PROTO_REPLY) {
            proto_reply_t reply = {.id = request->client_id};
            proto_buffer_t envelope;
            proto_envelope_begin(&envelope, PROTO_REPLY);
            proto_reply_encode(&reply, &envelope);
            zmq_msg_t route;
            zmq_msg_init_size(&route, request->client_route_size);
            memcpy(zmq_msg_data(&route), request->client_route, request->client_route_size);
            if (proto_envelope_send(zsock_resolve(self->router), &route, &envelope, payload,
                                    ZMQ_DONTWAIT) != 0)
                self->counters.undeliverable++;
            zmq_msg_close(&route);
            proto_buffer_release(&envelope);
            service->replies++;
        } else {
            /* A worker's error: pass its code and message through, with the client's id. */
            proto_error_t error;
            proto_decode_error_t why;
            if (proto_error_decode(&error, header, header_size, &why) == 0) {
                char message[PROTO_TEXT_MAX + 1];
                snprintf(message, sizeof message, "%.*s", (int)error.message_len,
                         error.message ? error.message : "");
                broker_send_error(self, request->client_route, request->client_route_size,
                                  request->client_id, error.code, message);
            }
            service->errors++;
        }
    }
    broker_request_free(self, request);
    broker_worker_make_available(self, worker);
    broker_dispatch(self, service);
}

void broker_requeue_worker(broker_t *self, broker_peer_t *worker)
{
    if (!worker->inflight)
        return;
    /* Walk from the newest so that pushing each to the front keeps the original order. */
    broker_request_t *request = zlistx_last(worker->inflight);
    while (request) {
        broker_request_t *previous = zlistx_prev(worker->inflight);
        zlistx_delete(worker->inflight, request->list_handle);
        request->list_handle = NULL;
        request->worker = NULL;
        if (request->state == REQUEST_ABANDONED) {
            broker_request_free(self, request);
        } else {
            request->service->inflight--;
            request->service->redispatches++;
            request->state = REQUEST_QUEUED; /* still its key's current request */
            request->list_handle = zlistx_add_start(request->service->queue, request);
            plog_info("request_redispatched", "service=%s request=%" PRIu64 " attempts=%u",
                      request->service->name, request->id, request->attempts);
        }
        request = previous;
    }
}

void broker_expire_requests(broker_t *self, int64_t now_ms)
{
    broker_request_t *request;
    while ((request = deadline_heap_pop_expired(self->deadlines, now_ms))) {
        broker_service_t *service = request->service;
        service->timeouts++;
        broker_send_error(self, request->client_route, request->client_route_size,
                          request->client_id, "timeout", "the request's deadline passed");
        if (request->state == REQUEST_INFLIGHT) {
            /* The worker still holds it: keep the record (and its credit) until it answers. */
            request->state = REQUEST_ABANDONED;
            service->inflight--;
            service->errors++;
        } else {
            service->errors++;
            broker_request_free(self, request);
        }
    }
    /* Services without replicas past the grace period fail their queue at once. */
    for (broker_service_t *s = zhashx_first(self->services); s; s = zhashx_next(self->services))
        while (zlistx_size(s->queue) > 0 && s_service_gone(self, s, now_ms)) {
            s->no_service++;
            s_fail_request(self, zlistx_first(s->queue), "no_service",
                           "no replica of the service is connected");
        }
}

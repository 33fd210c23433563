/*  bus_client.c - see bus_client.h.

    Owns: the bus link to the broker (which reconnects by itself; on each new connection we
    resend what is pending), a PUB and a SUB socket for events (ZeroMQ reconnects those and
    replays subscriptions by itself), the pending requests (zhashx by id, owning) and their
    deadline heap. */
#include "bus_client.h"
#include "counter_set.h"
#include "deadline_heap.h"
#include "plog.h"
#include "../proto/proto_envelope.h"

#include <inttypes.h>

#define S_BATCH 512
#define S_TIMEOUT_GRACE_MS 250 /* let the broker's own timeout error arrive first */

#define T bus_client_config_t
const config_option_t bus_client_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_IN", T, events_in, "tcp://127.0.0.1:5556",
                      "the broker's endpoint for publishing events"),
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_OUT", T, events_out, "tcp://127.0.0.1:5557",
                      "the broker's endpoint for receiving events"),
    CONFIG_INT_OPTION("PARLEY_CLIENT_MAX_PENDING", T, max_pending, "100000", 1, 10000000,
                      "requests held waiting for an answer; more are refused"),
};
#undef T
const size_t bus_client_config_option_count =
    sizeof bus_client_config_options / sizeof bus_client_config_options[0];

typedef struct {
    uint64_t id;
    char service[PROTO_NAME_MAX + 1];
    char type[PROTO_NAME_MAX + 1];
    char order_key[PROTO_NAME_MAX + 1]; /* empty: none */
    int64_t deadline_ms;
    uint8_t *payload;
    size_t size;
    bus_reply_fn *fn;
    void *arg;
    size_t heap_slot;
} s_pending_t;

struct bus_client_t {
    bus_client_config_t config;
    char kind[PROTO_NAME_MAX + 1];
    bus_link_t *link;
    zsock_t *pub;
    zsock_t *sub;
    zhashx_t *pending;            /* id -> s_pending_t, owns */
    deadline_heap_t *deadlines;
    uint64_t next_id;
    bus_event_fn *event_fn;
    void *event_arg;
    counter_set_t counters;
    uint64_t *requests, *replies, *errors, *timeouts, *resends, *late_answers, *refused,
        *rejected, *events_in, *events_out;
};

static size_t s_id_hash(const void *key)
{
    uint64_t x = (uint64_t)(uintptr_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    return (size_t)(x ^ (x >> 33));
}

static int s_id_compare(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

static void s_pending_free(void **item)
{
    s_pending_t *pending = *item;
    if (pending) {
        free(pending->payload);
        free(pending);
        *item = NULL;
    }
}

static zsock_t *s_socket(int type, const char *endpoint, int64_t max_frame_bytes)
{
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, 100000);
    zsock_set_rcvhwm(sock, 100000);
    zsock_set_maxmsgsize(sock, (int)(max_frame_bytes * 4));
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        plog_error("connect_failed", "endpoint=%s", endpoint);
        zsock_destroy(&sock);
    }
    return sock;
}

static void s_on_connected(bus_link_t *link, void *arg);
static void s_on_message(bus_link_t *link, proto_envelope_t *envelope, void *arg);

bus_client_t *bus_client_new(const bus_client_config_t *config, const char *kind)
{
    bus_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    proto_name_set(self->kind, kind);
    self->next_id = 1;
    self->pending = zhashx_new();
    self->deadlines = deadline_heap_new();
    self->link = bus_link_new(&config->link, kind, kind, &self->counters, s_on_connected,
                              s_on_message, self);
    self->pub = s_socket(ZMQ_PUB, config->events_in, config->link.max_frame_bytes);
    self->sub = s_socket(ZMQ_SUB, config->events_out, config->link.max_frame_bytes);
    if (!self->pending || !self->deadlines || !self->link || !self->pub || !self->sub) {
        bus_client_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->pending, s_pending_free);
    zhashx_set_key_hasher(self->pending, s_id_hash);
    zhashx_set_key_comparator(self->pending, s_id_compare);
    zhashx_set_key_duplicator(self->pending, NULL);
    zhashx_set_key_destructor(self->pending, NULL);
#define S_COUNTER(field) self->field = counter_set_require(&self->counters, #field)
    S_COUNTER(requests);
    S_COUNTER(replies);
    S_COUNTER(errors);
    S_COUNTER(timeouts);
    S_COUNTER(resends);
    S_COUNTER(late_answers);
    S_COUNTER(refused);
    S_COUNTER(rejected);
    S_COUNTER(events_in);
    S_COUNTER(events_out);
#undef S_COUNTER
    return self;
}

void bus_client_destroy(bus_client_t **self_p)
{
    bus_client_t *self = *self_p;
    if (!self)
        return;
    bus_link_destroy(&self->link);
    deadline_heap_destroy(&self->deadlines);
    zhashx_destroy(&self->pending);
    zsock_destroy(&self->pub);
    zsock_destroy(&self->sub);
    free(self);
    *self_p = NULL;
}

size_t bus_client_pending(const bus_client_t *self)
{
    return zhashx_size(self->pending);
}

uint64_t *bus_client_counter(bus_client_t *self, const char *name)
{
    return counter_set_require(&self->counters, name);
}

void bus_client_on_event(bus_client_t *self, bus_event_fn *fn, void *arg)
{
    self->event_fn = fn;
    self->event_arg = arg;
}

/* Sends a pending request on the current connection. Returns 0 or -1. */
static int s_send_request(bus_client_t *self, s_pending_t *pending)
{
    if (!bus_link_connected(self->link))
        return -1;
    int64_t left = pending->deadline_ms - zclock_mono();
    proto_request_t request = {.id = pending->id,
                               .timeout_ms = left < 1 ? 1 : (uint32_t)left};
    proto_name_set(request.service, pending->service);
    proto_name_set(request.type, pending->type);
    if (pending->order_key[0]) {
        request.has_order_key = true;
        proto_name_set(request.order_key, pending->order_key);
    }
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_REQUEST);
    proto_request_encode(&request, &envelope);
    zmq_msg_t body;
    zmq_msg_init_size(&body, pending->size);
    if (pending->size)
        memcpy(zmq_msg_data(&body), pending->payload, pending->size);
    int rc = bus_link_send(self->link, &envelope, &body);
    zmq_msg_close(&body);
    proto_buffer_release(&envelope);
    return rc;
}

uint64_t bus_client_request(bus_client_t *self, const char *service, const char *type,
                            const uint8_t *payload, size_t size, uint32_t timeout_ms,
                            bus_reply_fn *fn, void *arg)
{
    return bus_client_request_ordered(self, service, type, NULL, payload, size, timeout_ms, fn,
                                      arg);
}

uint64_t bus_client_request_ordered(bus_client_t *self, const char *service, const char *type,
                                    const char *order_key, const uint8_t *payload, size_t size,
                                    uint32_t timeout_ms, bus_reply_fn *fn, void *arg)
{
    if (zhashx_size(self->pending) >= (size_t)self->config.max_pending ||
        !proto_name_valid(service, strlen(service)) || !proto_name_valid(type, strlen(type)) ||
        (order_key && !proto_name_valid(order_key, strlen(order_key))) ||
        timeout_ms == 0 || timeout_ms > PROTO_TIMEOUT_MAX_MS ||
        size > (size_t)self->config.link.max_frame_bytes) {
        (*self->refused)++;
        return 0;
    }
    s_pending_t *pending = calloc(1, sizeof *pending);
    if (!pending || (size && !(pending->payload = malloc(size)))) {
        free(pending);
        (*self->refused)++;
        return 0;
    }
    pending->id = self->next_id++;
    proto_name_set(pending->service, service);
    proto_name_set(pending->type, type);
    if (order_key)
        proto_name_set(pending->order_key, order_key);
    pending->deadline_ms = zclock_mono() + timeout_ms;
    if (size)
        memcpy(pending->payload, payload, size);
    pending->size = size;
    pending->fn = fn;
    pending->arg = arg;
    pending->heap_slot = DEADLINE_HEAP_NONE;
    if (deadline_heap_push(self->deadlines, pending->deadline_ms + S_TIMEOUT_GRACE_MS, pending,
                           &pending->heap_slot) != 0) {
        s_pending_free((void **)&pending);
        (*self->refused)++;
        return 0;
    }
    zhashx_insert(self->pending, (void *)(uintptr_t)pending->id, pending);
    (*self->requests)++;
    /* If the pipe is full or we are reconnecting, the request stays pending and goes out with
       the resend after the next (re)connection, or times out. */
    s_send_request(self, pending);
    return pending->id;
}

static void s_complete(bus_client_t *self, uint64_t id, const char *code, const char *message,
                       const uint8_t *payload, size_t size);

void bus_client_cancel_all(bus_client_t *self)
{
    /* The ids first, then the callbacks: zhashx_first after each removal rescans the table
       from its first bucket, which made this quadratic (5.3 s for 100,000 requests held
       through a broker outage). A callback may make new requests: the next round gets them. */
    while (zhashx_size(self->pending) > 0) {
        zlistx_t *ids = zhashx_keys(self->pending); /* the ids themselves (ids are > 0) */
        if (!ids) { /* out of memory: one at a time, slowly but surely */
            s_pending_t *pending = zhashx_first(self->pending);
            s_complete(self, pending->id, "cancelled", "the client is shutting down", NULL, 0);
            continue;
        }
        for (void *id = zlistx_first(ids); id; id = zlistx_next(ids))
            s_complete(self, (uint64_t)(uintptr_t)id, "cancelled", "the client is shutting down",
                       NULL, 0);
        zlistx_destroy(&ids);
    }
}

static void s_complete(bus_client_t *self, uint64_t id, const char *code, const char *message,
                       const uint8_t *payload, size_t size)
{
    s_pending_t *pending = zhashx_lookup(self->pending, (void *)(uintptr_t)id);
    if (!pending) {
        (*self->late_answers)++;
        return;
    }
    bus_reply_fn *fn = pending->fn;
    void *arg = pending->arg;
    bus_result_t result = {id, code, message, payload, size};
    deadline_heap_remove(self->deadlines, &pending->heap_slot);
    zhashx_delete(self->pending, (void *)(uintptr_t)id); /* frees pending */
    if (code)
        (*self->errors)++;
    else
        (*self->replies)++;
    if (fn)
        fn(self, &result, arg);
}

static void s_on_answer(bus_client_t *self, proto_envelope_t *env)
{
    proto_decode_error_t why;
    if (env->command == PROTO_REPLY) {
        proto_reply_t reply;
        if (proto_reply_decode(&reply, env->header, env->header_size, &why) != 0) {
            (*self->rejected)++;
            return;
        }
        s_complete(self, reply.id, NULL, NULL, zmq_msg_data(env->payload),
                   zmq_msg_size(env->payload));
        return;
    }
    proto_error_t error;
    if (proto_error_decode(&error, env->header, env->header_size, &why) != 0) {
        (*self->rejected)++;
        return;
    }
    char message[PROTO_TEXT_MAX + 1];
    snprintf(message, sizeof message, "%.*s", (int)error.message_len,
             error.message ? error.message : "");
    if (error.id == 0) {
        plog_warn("broker_error", "code=%s", error.code);
        return;
    }
    s_complete(self, error.id, error.code, message, NULL, 0);
}

static void s_on_message(bus_link_t *link, proto_envelope_t *envelope, void *arg)
{
    (void)link;
    bus_client_t *self = arg;
    if (envelope->command == PROTO_REPLY || envelope->command == PROTO_ERROR)
        s_on_answer(self, envelope);
    else
        (*self->rejected)++;
}

static int s_on_sub(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    bus_client_t *self = arg;
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH; i++) {
        if (proto_frames_recv(&frames, zsock_resolve(sock), ZMQ_DONTWAIT) != 0)
            break;
        proto_event_t header;
        proto_decode_error_t why;
        if (frames.total != 3 || frames.count != 3 ||
            proto_event_decode(&header, zmq_msg_data(&frames.frames[1]),
                               zmq_msg_size(&frames.frames[1]), &why) != 0) {
            (*self->rejected)++;
        } else {
            (*self->events_in)++;
            if (self->event_fn)
                self->event_fn(self, zmq_msg_data(&frames.frames[0]),
                               zmq_msg_size(&frames.frames[0]), &header,
                               zmq_msg_data(&frames.frames[2]), zmq_msg_size(&frames.frames[2]),
                               self->event_arg);
        }
        proto_frames_close(&frames);
    }
    return 0;
}

static int s_pending_by_id(const void *a, const void *b)
{
    uint64_t x = (*(s_pending_t *const *)a)->id, y = (*(s_pending_t *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* After each (re)connection: resend everything still pending. */
static void s_on_connected(bus_link_t *link, void *arg)
{
    (void)link;
    bus_client_t *self = arg;
    if (zhashx_size(self->pending) == 0)
        return;
    /* Oldest first: the broker keeps requests of one order key in the order it receives
       them, so they must reach it in the order they were made. */
    size_t count = zhashx_size(self->pending), resent = 0;
    s_pending_t **all = malloc(count * sizeof *all);
    if (!all) {
        plog_error("resend_failed", "reason=\"out of memory\" pending=%zu", count);
        return; /* they time out; nothing is sent out of order */
    }
    size_t n = 0;
    for (s_pending_t *p = zhashx_first(self->pending); p; p = zhashx_next(self->pending))
        all[n++] = p;
    qsort(all, n, sizeof *all, s_pending_by_id);
    for (size_t i = 0; i < n; i++)
        if (s_send_request(self, all[i]) == 0)
            resent++;
    free(all);
    (*self->resends) += resent;
    plog_info("requests_resent", "count=%zu", resent);
}

static int s_on_deadline_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    bus_client_t *self = arg;
    int64_t now = zclock_mono();
    s_pending_t *pending;
    while ((pending = deadline_heap_pop_expired(self->deadlines, now))) {
        (*self->timeouts)++;
        s_complete(self, pending->id, "timeout", "no answer before the request's deadline",
                   NULL, 0);
    }
    return 0;
}

int bus_client_attach(bus_client_t *self, zloop_t *loop)
{
    if (zloop_reader(loop, self->sub, s_on_sub, self) != 0 ||
        zloop_timer(loop, 5, 0, s_on_deadline_timer, self) < 0 ||
        bus_link_start(self->link, loop) != 0)
        return -1;
    return 0;
}

int bus_client_publish(bus_client_t *self, const char *topic, const char *type,
                       const uint8_t *payload, size_t size)
{
    int rc = proto_event_publish(zsock_resolve(self->pub), topic, type,
                                 bus_link_instance(self->link), payload, size);
    if (rc == 0)
        (*self->events_out)++;
    return rc;
}

const char *bus_client_instance(const bus_client_t *self)
{
    return bus_link_instance(self->link);
}

int bus_client_subscribe(bus_client_t *self, const char *topic)
{
    return zmq_setsockopt(zsock_resolve(self->sub), ZMQ_SUBSCRIBE, topic, strlen(topic));
}

int bus_client_unsubscribe(bus_client_t *self, const char *topic)
{
    return zmq_setsockopt(zsock_resolve(self->sub), ZMQ_UNSUBSCRIBE, topic, strlen(topic));
}

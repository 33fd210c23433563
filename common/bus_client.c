/*  bus_client.c - see bus_client.h.

    Owns: the DEALER socket to the broker (replaced on reconnect), a PUB and a SUB socket for
    events (ZeroMQ reconnects those and replays subscriptions by itself), the pending requests
    (zhashx by id, owning) and their deadline heap. */
#include "bus_client.h"
#include "backoff.h"
#include "counter_set.h"
#include "deadline_heap.h"
#include "plog.h"
#include "../proto/proto_envelope.h"

#include <inttypes.h>
#include <unistd.h>

#define S_BATCH 512
#define S_TIMEOUT_GRACE_MS 250 /* let the broker's own timeout error arrive first */

#define T bus_client_config_t
const config_option_t bus_client_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_BROKER_ENDPOINT", T, broker_endpoint, "tcp://127.0.0.1:5555",
                      "the broker's ZeroMQ endpoint for requests"),
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_IN", T, events_in, "tcp://127.0.0.1:5556",
                      "the broker's endpoint for publishing events"),
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_OUT", T, events_out, "tcp://127.0.0.1:5557",
                      "the broker's endpoint for receiving events"),
    CONFIG_STR_OPTION("PARLEY_INSTANCE", T, instance, "",
                      "this process's name in /stats (default: kind-host-pid)"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_MS", T, heartbeat_ms, "1000", 10, 60000,
                      "heartbeat interval in milliseconds"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_LIVENESS", T, liveness, "3", 1, 100,
                      "heartbeats missed before the broker counts as gone"),
    CONFIG_INT_OPTION("PARLEY_RECONNECT_MIN_MS", T, reconnect_min_ms, "100", 1, 60000,
                      "first reconnect delay bound (ms); doubles with jitter"),
    CONFIG_INT_OPTION("PARLEY_RECONNECT_MAX_MS", T, reconnect_max_ms, "5000", 1, 600000,
                      "largest reconnect delay bound (ms)"),
    CONFIG_INT_OPTION("PARLEY_CLIENT_MAX_PENDING", T, max_pending, "100000", 1, 10000000,
                      "requests held waiting for an answer; more are refused"),
    CONFIG_INT_OPTION("PARLEY_MAX_FRAME_BYTES", T, max_frame_bytes, "1048576", 1024, 268435456,
                      "largest message accepted, all frames together, in bytes"),
};
#undef T
const size_t bus_client_config_option_count =
    sizeof bus_client_config_options / sizeof bus_client_config_options[0];

typedef struct {
    uint64_t id;
    char service[PROTO_NAME_MAX + 1];
    char type[PROTO_NAME_MAX + 1];
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
    zloop_t *loop;                /* borrowed, once attached */
    zsock_t *dealer;              /* NULL while waiting to reconnect */
    zsock_t *pub;
    zsock_t *sub;
    zhashx_t *pending;            /* id -> s_pending_t, owns */
    deadline_heap_t *deadlines;
    uint64_t next_id;
    int64_t broker_expires_at_ms;
    backoff_t backoff;
    bus_event_fn *event_fn;
    void *event_arg;
    counter_set_t counters;
    uint64_t *requests, *replies, *errors, *timeouts, *resends, *reconnects, *late_answers,
        *refused, *rejected, *events_in, *events_out;
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

bus_client_t *bus_client_new(const bus_client_config_t *config, const char *kind)
{
    bus_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    proto_name_set(self->kind, kind);
    if (!*self->config.instance) {
        char host[40] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(self->config.instance, sizeof self->config.instance, "%s-%s-%d", kind, host,
                 (int)getpid());
    }
    self->next_id = 1;
    backoff_init(&self->backoff, config->reconnect_min_ms, config->reconnect_max_ms);
    self->pending = zhashx_new();
    self->deadlines = deadline_heap_new();
    self->dealer = s_socket(ZMQ_DEALER, config->broker_endpoint, config->max_frame_bytes);
    self->pub = s_socket(ZMQ_PUB, config->events_in, config->max_frame_bytes);
    self->sub = s_socket(ZMQ_SUB, config->events_out, config->max_frame_bytes);
    if (!self->pending || !self->deadlines || !self->dealer || !self->pub || !self->sub) {
        bus_client_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->pending, s_pending_free);
    zhashx_set_key_hasher(self->pending, s_id_hash);
    zhashx_set_key_comparator(self->pending, s_id_compare);
    zhashx_set_key_duplicator(self->pending, NULL);
    zhashx_set_key_destructor(self->pending, NULL);
    self->broker_expires_at_ms = zclock_mono() + config->heartbeat_ms * config->liveness;
#define S_COUNTER(field) self->field = counter_set_require(&self->counters, #field)
    S_COUNTER(requests);
    S_COUNTER(replies);
    S_COUNTER(errors);
    S_COUNTER(timeouts);
    S_COUNTER(resends);
    S_COUNTER(reconnects);
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
    if (self->dealer) { /* let the broker forget us now rather than after missed heartbeats */
        proto_disconnect_t bye = {.has_reason = true};
        proto_name_set(bye.reason, "client_closing");
        uint8_t *header;
        size_t size;
        if (proto_disconnect_encode(&bye, &header, &size) == 0) {
            proto_envelope_send(zsock_resolve(self->dealer), NULL, PROTO_DISCONNECT, header,
                                size, NULL, ZMQ_DONTWAIT);
            free(header);
        }
        zsock_set_linger(self->dealer, 100);
    }
    deadline_heap_destroy(&self->deadlines);
    zhashx_destroy(&self->pending);
    zsock_destroy(&self->dealer);
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
    if (!self->dealer)
        return -1;
    int64_t left = pending->deadline_ms - zclock_mono();
    proto_request_t request = {.id = pending->id,
                               .timeout_ms = left < 1 ? 1 : (uint32_t)left};
    proto_name_set(request.service, pending->service);
    proto_name_set(request.type, pending->type);
    uint8_t *header;
    size_t header_size;
    if (proto_request_encode(&request, &header, &header_size) != 0)
        return -1;
    zmq_msg_t body;
    zmq_msg_init_size(&body, pending->size);
    if (pending->size)
        memcpy(zmq_msg_data(&body), pending->payload, pending->size);
    int rc = proto_envelope_send(zsock_resolve(self->dealer), NULL, PROTO_REQUEST, header,
                                 header_size, &body, ZMQ_DONTWAIT);
    zmq_msg_close(&body);
    free(header);
    return rc;
}

uint64_t bus_client_request(bus_client_t *self, const char *service, const char *type,
                            const uint8_t *payload, size_t size, uint32_t timeout_ms,
                            bus_reply_fn *fn, void *arg)
{
    if (zhashx_size(self->pending) >= (size_t)self->config.max_pending ||
        !proto_name_valid(service, strlen(service)) || !proto_name_valid(type, strlen(type)) ||
        timeout_ms == 0 || timeout_ms > PROTO_TIMEOUT_MAX_MS ||
        size > (size_t)self->config.max_frame_bytes) {
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

static void s_reconnect(bus_client_t *self, const char *why);

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

static int s_on_dealer(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    bus_client_t *self = arg;
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH && self->dealer == sock; i++) {
        if (proto_frames_recv(&frames, zsock_resolve(sock), ZMQ_DONTWAIT) != 0)
            break;
        proto_envelope_t env;
        proto_reject_t reason =
            proto_envelope_parse(&frames, false, (size_t)self->config.max_frame_bytes * 2, &env);
        if (reason != PROTO_OK) {
            (*self->rejected)++;
            proto_frames_close(&frames);
            continue;
        }
        self->broker_expires_at_ms =
            zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
        backoff_reset(&self->backoff);
        if (env.command == PROTO_REPLY || env.command == PROTO_ERROR)
            s_on_answer(self, &env);
        else if (env.command == PROTO_DISCONNECT)
            s_reconnect(self, "broker_said_disconnect");
        proto_frames_close(&frames);
    }
    return 0;
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

static void s_send_heartbeat(bus_client_t *self)
{
    proto_heartbeat_t *heartbeat = calloc(1, sizeof *heartbeat);
    if (!heartbeat || !self->dealer) {
        free(heartbeat);
        return;
    }
    heartbeat->has_instance = heartbeat->has_kind = heartbeat->has_counters = true;
    proto_name_set(heartbeat->instance, self->config.instance);
    proto_name_set(heartbeat->kind, self->kind);
    for (size_t i = 0; i < self->counters.count; i++) {
        proto_name_set(heartbeat->counters[i].name, self->counters.counters[i].name);
        heartbeat->counters[i].value = self->counters.counters[i].value;
    }
    heartbeat->counters_count = (uint32_t)self->counters.count;
    uint8_t *header;
    size_t size;
    if (proto_heartbeat_encode(heartbeat, &header, &size) == 0) {
        proto_envelope_send(zsock_resolve(self->dealer), NULL, PROTO_HEARTBEAT, header, size,
                            NULL, ZMQ_DONTWAIT);
        free(header);
    }
    free(heartbeat);
}

/* Opens a new DEALER and resends everything pending. Returns 0 or -1. */
static int s_connect(bus_client_t *self)
{
    zsock_t *dealer = s_socket(ZMQ_DEALER, self->config.broker_endpoint,
                               self->config.max_frame_bytes);
    if (!dealer)
        return -1;
    if (self->loop && zloop_reader(self->loop, dealer, s_on_dealer, self) != 0) {
        zsock_destroy(&dealer);
        return -1;
    }
    self->dealer = dealer;
    self->broker_expires_at_ms = zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
    s_send_heartbeat(self);
    size_t resent = 0;
    for (s_pending_t *p = zhashx_first(self->pending); p; p = zhashx_next(self->pending))
        if (s_send_request(self, p) == 0)
            resent++;
    (*self->resends) += resent;
    plog_info("broker_reconnected", "broker=%s resent=%zu", self->config.broker_endpoint, resent);
    return 0;
}

static int s_on_reconnect_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    bus_client_t *self = arg;
    if (!self->dealer && s_connect(self) != 0)
        s_reconnect(self, "connect_failed");
    return 0;
}

static void s_reconnect(bus_client_t *self, const char *why)
{
    if (self->dealer) {
        if (self->loop)
            zloop_reader_end(self->loop, self->dealer);
        zsock_destroy(&self->dealer);
    }
    (*self->reconnects)++;
    int64_t delay = backoff_next_ms(&self->backoff);
    plog_warn("broker_lost", "reason=%s reconnect_in_ms=%" PRId64 " pending=%zu", why, delay,
              zhashx_size(self->pending));
    if (self->loop)
        zloop_timer(self->loop, (size_t)delay, 1, s_on_reconnect_timer, self);
}

static int s_on_heartbeat_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    bus_client_t *self = arg;
    if (!self->dealer)
        return 0;
    if (zclock_mono() > self->broker_expires_at_ms)
        s_reconnect(self, "heartbeat_expired");
    else
        s_send_heartbeat(self);
    return 0;
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
    self->loop = loop;
    if (zloop_reader(loop, self->dealer, s_on_dealer, self) != 0 ||
        zloop_reader(loop, self->sub, s_on_sub, self) != 0 ||
        zloop_timer(loop, (size_t)self->config.heartbeat_ms, 0, s_on_heartbeat_timer, self) < 0 ||
        zloop_timer(loop, 5, 0, s_on_deadline_timer, self) < 0)
        return -1;
    s_send_heartbeat(self);
    return 0;
}

int bus_client_publish(bus_client_t *self, const char *topic, const char *type,
                       const uint8_t *payload, size_t size)
{
    size_t topic_size = strlen(topic);
    if (topic_size == 0 || topic_size > 255 || !proto_name_valid(type, strlen(type)))
        return -1;
    proto_event_t header = {.has_ts_ms = true, .ts_ms = (uint64_t)zclock_time(),
                            .has_origin = true};
    proto_name_set(header.type, type);
    proto_name_set(header.origin, self->config.instance);
    uint8_t *encoded;
    size_t encoded_size;
    if (proto_event_encode(&header, &encoded, &encoded_size) != 0)
        return -1;
    void *pub = zsock_resolve(self->pub);
    int rc = zmq_send(pub, topic, topic_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ? -1 : 0;
    if (rc == 0) {
        zmq_send(pub, encoded, encoded_size, ZMQ_SNDMORE);
        zmq_send(pub, payload, size, 0);
        (*self->events_out)++;
    }
    free(encoded);
    return rc;
}

int bus_client_subscribe(bus_client_t *self, const char *topic)
{
    return zmq_setsockopt(zsock_resolve(self->sub), ZMQ_SUBSCRIBE, topic, strlen(topic));
}

int bus_client_unsubscribe(bus_client_t *self, const char *topic)
{
    return zmq_setsockopt(zsock_resolve(self->sub), ZMQ_UNSUBSCRIBE, topic, strlen(topic));
}

/*  worker.c - the worker runtime; see worker.h.

    Owns: the bus link to the broker, the zloop, the handler table, and the requests handed to
    handlers and not yet answered (outstanding). A request remembers the connection it came on
    (the link's generation); an answer to a request from an earlier connection is dropped, since
    the broker has re-dispatched it already. */
#include "worker.h"
#include "counter_set.h"
#include "plog.h"
#include "signals.h"
#include "../proto/proto.h"

#include <inttypes.h>

#define S_HANDLERS_MAX 32

#define T worker_config_t
const config_option_t worker_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_BROKER_EVENTS_IN", T, events_in, "tcp://127.0.0.1:5556",
                      "the broker's endpoint for publishing events"),
    CONFIG_INT_OPTION("PARLEY_WORKER_CAPACITY", T, capacity, "16", 1, 10000,
                      "requests this worker holds at once"),
    CONFIG_INT_OPTION("PARLEY_DRAIN_TIMEOUT_MS", T, drain_timeout_ms, "5000", 0, 600000,
                      "on SIGTERM, how long to finish held requests (ms)"),
    CONFIG_STR_OPTION("PARLEY_LOG_LEVEL", T, log_level, "info", "debug, info, warn or error"),
};
#undef T
const size_t worker_config_option_count =
    sizeof worker_config_options / sizeof worker_config_options[0];

typedef struct {
    char type[PROTO_NAME_MAX + 1];
    worker_handler_fn *fn;
    void *arg;
} s_handler_t;

struct worker_request_t {
    uint64_t id;                    /* the broker's id */
    uint32_t attempt;
    char type[PROTO_NAME_MAX + 1];
    int64_t deadline_ms;
    zmq_msg_t payload;
    uint64_t generation;            /* connection it arrived on */
    void *handle;                   /* in worker->outstanding */
};

struct worker_t {
    worker_config_t config;
    char service[PROTO_NAME_MAX + 1];
    zloop_t *loop;
    bus_link_t *link;
    zsock_t *pub;                   /* events out, connected to the broker's XSUB */
    s_handler_t handlers[S_HANDLERS_MAX];
    size_t handler_count;
    zlistx_t *outstanding;          /* worker_request_t * handed to handlers, owned */
    counter_set_t counters;
    uint64_t *requests, *replies, *errors, *unknown_types, *stale_answers, *events,
        *events_dropped;
    bool draining;
    int64_t drain_until_ms;
    int signal_fd;
    int result;
};

static void s_request_free(worker_request_t **request_p)
{
    worker_request_t *request = *request_p;
    if (!request)
        return;
    zmq_msg_close(&request->payload);
    free(request);
    *request_p = NULL;
}

static void s_on_connected(bus_link_t *link, void *arg);
static void s_on_message(bus_link_t *link, proto_envelope_t *envelope, void *arg);

worker_t *worker_new(const worker_config_t *config, const char *service)
{
    if (!proto_name_valid(service, strlen(service)))
        return NULL;
    worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    proto_name_set(self->service, service);
    self->loop = zloop_new();
    self->outstanding = zlistx_new();
    self->link = bus_link_new(&config->link, "worker", service, &self->counters, s_on_connected,
                              s_on_message, self);
    self->pub = zsock_new(ZMQ_PUB);
    if (self->pub) {
        zsock_set_linger(self->pub, 500);
        zsock_set_sndhwm(self->pub, 100000);
        if (zsock_connect(self->pub, "%s", config->events_in) != 0)
            zsock_destroy(&self->pub);
    }
    if (!self->loop || !self->outstanding || !self->link || !self->pub) {
        worker_destroy(&self);
        return NULL;
    }
    self->requests = counter_set_require(&self->counters, "requests");
    self->replies = counter_set_require(&self->counters, "replies");
    self->errors = counter_set_require(&self->counters, "errors");
    self->unknown_types = counter_set_require(&self->counters, "unknown_types");
    self->stale_answers = counter_set_require(&self->counters, "stale_answers");
    self->events = counter_set_require(&self->counters, "events_published");
    self->events_dropped = counter_set_require(&self->counters, "events_dropped");
    return self;
}

void worker_destroy(worker_t **self_p)
{
    worker_t *self = *self_p;
    if (!self)
        return;
    if (self->outstanding) {
        for (worker_request_t *r = zlistx_first(self->outstanding); r;
             r = zlistx_next(self->outstanding))
            s_request_free(&r);
        zlistx_destroy(&self->outstanding);
    }
    bus_link_destroy(&self->link);
    zsock_destroy(&self->pub);
    zloop_destroy(&self->loop);
    free(self);
    *self_p = NULL;
}

int worker_on(worker_t *self, const char *type, worker_handler_fn *fn, void *arg)
{
    if (!proto_name_valid(type, strlen(type)) || self->handler_count == S_HANDLERS_MAX)
        return -1;
    for (size_t i = 0; i < self->handler_count; i++)
        if (strcmp(self->handlers[i].type, type) == 0)
            return -1;
    s_handler_t *handler = &self->handlers[self->handler_count++];
    proto_name_set(handler->type, type);
    handler->fn = fn;
    handler->arg = arg;
    return 0;
}

int worker_publish(worker_t *self, const char *topic, const char *type, const uint8_t *payload,
                   size_t size)
{
    return worker_publish_as(self, NULL, topic, type, payload, size);
}

int worker_publish_as(worker_t *self, const char *origin, const char *topic, const char *type,
                      const uint8_t *payload, size_t size)
{
    int rc = proto_event_publish(zsock_resolve(self->pub), topic, type,
                                 origin ? origin : bus_link_instance(self->link), payload, size);
    (*(rc == 0 ? self->events : self->events_dropped))++;
    return rc;
}

const char *worker_instance(const worker_t *self)
{
    return bus_link_instance(self->link);
}

zloop_t *worker_loop(worker_t *self)
{
    return self->loop;
}

uint64_t *worker_counter(worker_t *self, const char *name)
{
    return counter_set_require(&self->counters, name);
}

const char *worker_request_type(const worker_request_t *request)
{
    return request->type;
}

const uint8_t *worker_request_payload(const worker_request_t *request, size_t *size)
{
    *size = zmq_msg_size((zmq_msg_t *)&request->payload);
    return zmq_msg_data((zmq_msg_t *)&request->payload);
}

int64_t worker_request_deadline_ms(const worker_request_t *request)
{
    return request->deadline_ms;
}

uint32_t worker_request_attempt(const worker_request_t *request)
{
    return request->attempt;
}

/* Sends an answer (envelope: REPLY or ERROR, with payload for REPLY) and frees the request. */
static int s_answer(worker_t *self, worker_request_t **request_p, const proto_buffer_t *envelope,
                    const uint8_t *payload, size_t size, bool with_payload)
{
    worker_request_t *request = *request_p;
    int rc = -1;
    if (request->generation != bus_link_generation(self->link) ||
        !bus_link_connected(self->link)) {
        (*self->stale_answers)++;
    } else if (with_payload) {
        zmq_msg_t body;
        zmq_msg_init_size(&body, size);
        if (size)
            memcpy(zmq_msg_data(&body), payload, size);
        rc = bus_link_send(self->link, envelope, &body);
        zmq_msg_close(&body);
    } else
        rc = bus_link_send(self->link, envelope, NULL);
    zlistx_delete(self->outstanding, request->handle);
    s_request_free(request_p);
    bus_link_set_inflight(self->link, (uint32_t)zlistx_size(self->outstanding));
    return rc;
}

int worker_reply(worker_t *self, worker_request_t **request_p, const uint8_t *payload,
                 size_t size)
{
    proto_reply_t reply = {.id = (*request_p)->id};
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_REPLY);
    proto_reply_encode(&reply, &envelope);
    (*self->replies)++;
    int rc = s_answer(self, request_p, &envelope, payload, size, true);
    proto_buffer_release(&envelope);
    return rc;
}

int worker_reply_error(worker_t *self, worker_request_t **request_p, const char *code,
                       const char *message)
{
    proto_error_t error = {.id = (*request_p)->id, .has_message = true, .message = message,
                           .message_len = (uint32_t)strnlen(message, PROTO_TEXT_MAX)};
    proto_name_set(error.code, proto_name_valid(code, strlen(code)) ? code : "internal");
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_ERROR);
    proto_error_encode(&error, &envelope);
    (*self->errors)++;
    int rc = s_answer(self, request_p, &envelope, NULL, 0, false);
    proto_buffer_release(&envelope);
    return rc;
}

static void s_on_request(worker_t *self, proto_envelope_t *envelope)
{
    proto_dispatch_t dispatch;
    proto_decode_error_t why;
    if (proto_dispatch_decode(&dispatch, envelope->header, envelope->header_size, &why) != 0) {
        plog_warn("message_rejected", "reason=bad_header field=%s detail=\"%s\"", why.field,
                  why.reason);
        return;
    }
    worker_request_t *request = calloc(1, sizeof *request);
    if (!request)
        return; /* the broker re-dispatches it when we fail to answer */
    request->id = dispatch.id;
    request->attempt = dispatch.attempt;
    proto_name_set(request->type, dispatch.type);
    request->deadline_ms = zclock_mono() + dispatch.timeout_ms;
    request->generation = bus_link_generation(self->link);
    zmq_msg_init(&request->payload);
    zmq_msg_move(&request->payload, envelope->payload);
    request->handle = zlistx_add_end(self->outstanding, request);
    bus_link_set_inflight(self->link, (uint32_t)zlistx_size(self->outstanding));
    (*self->requests)++;
    for (size_t i = 0; i < self->handler_count; i++)
        if (strcmp(self->handlers[i].type, request->type) == 0) {
            self->handlers[i].fn(self, request, self->handlers[i].arg);
            return;
        }
    (*self->unknown_types)++;
    char message[200];
    snprintf(message, sizeof message, "service '%s' has no message type '%s'", self->service,
             request->type);
    worker_reply_error(self, &request, "unknown_type", message);
}

static void s_on_message(bus_link_t *link, proto_envelope_t *envelope, void *arg)
{
    (void)link;
    worker_t *self = arg;
    if (envelope->command == PROTO_REQUEST)
        s_on_request(self, envelope);
    else if (envelope->command == PROTO_ERROR) {
        proto_error_t error;
        proto_decode_error_t why;
        if (proto_error_decode(&error, envelope->header, envelope->header_size, &why) == 0)
            plog_warn("broker_error", "code=%s", error.code);
    }
}

static void s_on_connected(bus_link_t *link, void *arg)
{
    (void)link;
    worker_t *self = arg;
    proto_ready_t ready = {.capacity = (uint32_t)self->config.capacity};
    proto_name_set(ready.service, self->service);
    proto_name_set(ready.instance, bus_link_instance(self->link));
    BUS_LINK_SEND_HEADER(self->link, PROTO_READY, ready, &ready);
    if (self->draining) {
        proto_drain_t drain = {0};
        BUS_LINK_SEND_HEADER(self->link, PROTO_DRAIN, drain, &drain);
    }
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    (void)item;
    worker_t *self = arg;
    int signo = signals_read(self->signal_fd);
    if (!signo || self->draining)
        return 0;
    self->draining = true;
    self->drain_until_ms = zclock_mono() + self->config.drain_timeout_ms;
    plog_info("draining", "signal=%d outstanding=%zu", signo, zlistx_size(self->outstanding));
    proto_drain_t drain = {0};
    BUS_LINK_SEND_HEADER(self->link, PROTO_DRAIN, drain, &drain);
    return 0;
}

static int s_on_drain_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    worker_t *self = arg;
    if (!self->draining)
        return 0;
    size_t held = zlistx_size(self->outstanding);
    if (held > 0 && zclock_mono() < self->drain_until_ms)
        return 0;
    self->result = held > 0 ? 1 : 0;
    plog_info("stopped", "outstanding=%zu", held);
    return -1; /* worker_destroy says DISCONNECT */
}

int worker_run(worker_t *self, int signal_fd)
{
    self->signal_fd = signal_fd;
    zmq_pollitem_t signal_item = {NULL, signal_fd, ZMQ_POLLIN, 0};
    if (zloop_poller(self->loop, &signal_item, s_on_signal, self) != 0 ||
        zloop_timer(self->loop, 20, 0, s_on_drain_timer, self) < 0 ||
        bus_link_start(self->link, self->loop) != 0)
        return 1;
    zloop_start(self->loop);
    return self->result;
}

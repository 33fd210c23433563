/*  worker.c - the worker runtime; see worker.h.

    Owns: the DEALER socket (replaced on every reconnect), the zloop, the handler table and the
    requests handed to handlers and not yet answered (outstanding). A request remembers the
    connection it came on (generation); an answer to a request from an earlier connection is
    dropped, since the broker has re-dispatched it already. */
#include "worker.h"
#include "backoff.h"
#include "counter_set.h"
#include "plog.h"
#include "signals.h"
#include "../proto/proto.h"
#include "../proto/proto_envelope.h"

#include <inttypes.h>
#include <unistd.h>

#define S_HANDLERS_MAX 32
#define S_BATCH 256

#define T worker_config_t
const config_option_t worker_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_BROKER_ENDPOINT", T, broker_endpoint, "tcp://127.0.0.1:5555",
                      "the broker's ZeroMQ endpoint"),
    CONFIG_STR_OPTION("PARLEY_INSTANCE", T, instance, "",
                      "this process's name in /stats (default: host-pid)"),
    CONFIG_INT_OPTION("PARLEY_WORKER_CAPACITY", T, capacity, "16", 1, 10000,
                      "requests this worker holds at once"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_MS", T, heartbeat_ms, "1000", 10, 60000,
                      "heartbeat interval in milliseconds"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_LIVENESS", T, liveness, "3", 1, 100,
                      "heartbeats missed before the broker counts as gone"),
    CONFIG_INT_OPTION("PARLEY_RECONNECT_MIN_MS", T, reconnect_min_ms, "100", 1, 60000,
                      "first reconnect delay bound (ms); doubles with jitter"),
    CONFIG_INT_OPTION("PARLEY_RECONNECT_MAX_MS", T, reconnect_max_ms, "5000", 1, 600000,
                      "largest reconnect delay bound (ms)"),
    CONFIG_INT_OPTION("PARLEY_DRAIN_TIMEOUT_MS", T, drain_timeout_ms, "5000", 0, 600000,
                      "on SIGTERM, how long to finish held requests (ms)"),
    CONFIG_INT_OPTION("PARLEY_MAX_FRAME_BYTES", T, max_frame_bytes, "1048576", 1024, 268435456,
                      "largest message accepted, all frames together, in bytes"),
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
    zsock_t *dealer;                /* NULL while waiting to reconnect */
    uint64_t generation;
    int64_t broker_expires_at_ms;
    backoff_t backoff;
    s_handler_t handlers[S_HANDLERS_MAX];
    size_t handler_count;
    zlistx_t *outstanding;          /* worker_request_t * handed to handlers, owned */
    counter_set_t counters;
    uint64_t *requests, *replies, *errors, *reconnects, *unknown_types, *stale_answers,
        *rejected;
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

worker_t *worker_new(const worker_config_t *config, const char *service)
{
    if (!proto_name_valid(service, strlen(service)))
        return NULL;
    worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (!*self->config.instance) {
        char host[40] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(self->config.instance, sizeof self->config.instance, "%s-%s-%d", service, host,
                 (int)getpid());
    }
    proto_name_set(self->service, service);
    backoff_init(&self->backoff, config->reconnect_min_ms, config->reconnect_max_ms);
    self->loop = zloop_new();
    self->outstanding = zlistx_new();
    if (!self->loop || !self->outstanding) {
        worker_destroy(&self);
        return NULL;
    }
    self->requests = counter_set_require(&self->counters, "requests");
    self->replies = counter_set_require(&self->counters, "replies");
    self->errors = counter_set_require(&self->counters, "errors");
    self->reconnects = counter_set_require(&self->counters, "reconnects");
    self->unknown_types = counter_set_require(&self->counters, "unknown_types");
    self->stale_answers = counter_set_require(&self->counters, "stale_answers");
    self->rejected = counter_set_require(&self->counters, "rejected_messages");
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
    zloop_destroy(&self->loop);
    zsock_destroy(&self->dealer);
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

const char *worker_instance(const worker_t *self)
{
    return self->config.instance;
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

/* Sends a header-only command to the broker on the current connection. */
#define S_SEND(self, command, msg_type, value)                                                   \
    do {                                                                                         \
        uint8_t *header_;                                                                        \
        size_t size_;                                                                            \
        if ((self)->dealer && proto_##msg_type##_encode((value), &header_, &size_) == 0) {       \
            proto_envelope_send(zsock_resolve((self)->dealer), NULL, (command), header_, size_,   \
                                NULL, ZMQ_DONTWAIT);                                             \
            free(header_);                                                                       \
        }                                                                                        \
    } while (0)

static int s_answer(worker_t *self, worker_request_t **request_p, proto_command_t command,
                    const uint8_t *header, size_t header_size, const uint8_t *payload,
                    size_t size)
{
    worker_request_t *request = *request_p;
    int rc = -1;
    if (request->generation != self->generation || !self->dealer) {
        (*self->stale_answers)++;
    } else if (command == PROTO_REPLY) {
        zmq_msg_t body;
        zmq_msg_init_size(&body, size);
        if (size)
            memcpy(zmq_msg_data(&body), payload, size);
        rc = proto_envelope_send(zsock_resolve(self->dealer), NULL, PROTO_REPLY, header,
                                 header_size, &body, 0);
        zmq_msg_close(&body);
    } else
        rc = proto_envelope_send(zsock_resolve(self->dealer), NULL, command, header, header_size,
                                 NULL, 0);
    zlistx_delete(self->outstanding, request->handle);
    s_request_free(request_p);
    return rc;
}

int worker_reply(worker_t *self, worker_request_t **request_p, const uint8_t *payload,
                 size_t size)
{
    proto_reply_t reply = {.id = (*request_p)->id};
    uint8_t *header;
    size_t header_size;
    if (proto_reply_encode(&reply, &header, &header_size) != 0)
        return -1;
    (*self->replies)++;
    int rc = s_answer(self, request_p, PROTO_REPLY, header, header_size, payload, size);
    free(header);
    return rc;
}

int worker_reply_error(worker_t *self, worker_request_t **request_p, const char *code,
                       const char *message)
{
    proto_error_t error = {.id = (*request_p)->id, .has_message = true, .message = message,
                           .message_len = (uint32_t)strnlen(message, PROTO_TEXT_MAX)};
    proto_name_set(error.code, proto_name_valid(code, strlen(code)) ? code : "internal");
    uint8_t *header;
    size_t header_size;
    if (proto_error_encode(&error, &header, &header_size) != 0)
        return -1;
    (*self->errors)++;
    int rc = s_answer(self, request_p, PROTO_ERROR, header, header_size, NULL, 0);
    free(header);
    return rc;
}

static void s_on_request(worker_t *self, proto_envelope_t *env)
{
    proto_dispatch_t dispatch;
    proto_decode_error_t why;
    if (proto_dispatch_decode(&dispatch, env->header, env->header_size, &why) != 0) {
        (*self->rejected)++;
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
    request->generation = self->generation;
    zmq_msg_init(&request->payload);
    zmq_msg_move(&request->payload, env->payload);
    request->handle = zlistx_add_end(self->outstanding, request);
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

static void s_schedule_reconnect(worker_t *self, const char *why);

static int s_on_dealer(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    worker_t *self = arg;
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH && self->dealer == sock; i++) {
        if (proto_frames_recv(&frames, zsock_resolve(sock), ZMQ_DONTWAIT) != 0)
            break;
        proto_envelope_t env;
        proto_reject_t reason =
            proto_envelope_parse(&frames, false, (size_t)self->config.max_frame_bytes, &env);
        if (reason != PROTO_OK) {
            (*self->rejected)++;
            plog_warn("message_rejected", "reason=%s bytes=%zu", proto_reject_name(reason),
                      frames.bytes);
            proto_frames_close(&frames);
            continue;
        }
        self->broker_expires_at_ms =
            zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
        backoff_reset(&self->backoff);
        if (env.command == PROTO_REQUEST)
            s_on_request(self, &env);
        else if (env.command == PROTO_DISCONNECT)
            s_schedule_reconnect(self, "broker_said_disconnect");
        else if (env.command == PROTO_ERROR) {
            proto_error_t error;
            proto_decode_error_t why;
            if (proto_error_decode(&error, env.header, env.header_size, &why) == 0)
                plog_warn("broker_error", "code=%s", error.code);
        }
        proto_frames_close(&frames);
    }
    return 0;
}

static void s_send_ready(worker_t *self)
{
    proto_ready_t ready = {.capacity = (uint32_t)self->config.capacity};
    proto_name_set(ready.service, self->service);
    proto_name_set(ready.instance, self->config.instance);
    S_SEND(self, PROTO_READY, ready, &ready);
}

static int s_connect(worker_t *self)
{
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    if (!dealer)
        return -1;
    zsock_set_linger(dealer, 0);
    zsock_set_sndhwm(dealer, 10000);
    zsock_set_rcvhwm(dealer, 10000);
    zsock_set_maxmsgsize(dealer, (int)(self->config.max_frame_bytes * 4));
    if (zsock_connect(dealer, "%s", self->config.broker_endpoint) != 0 ||
        zloop_reader(self->loop, dealer, s_on_dealer, self) != 0) {
        zsock_destroy(&dealer);
        return -1;
    }
    self->dealer = dealer;
    self->generation++;
    self->broker_expires_at_ms = zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
    s_send_ready(self);
    if (self->draining) {
        proto_drain_t drain = {0};
        S_SEND(self, PROTO_DRAIN, drain, &drain);
    }
    plog_info("connected", "broker=%s service=%s instance=%s capacity=%" PRId64,
              self->config.broker_endpoint, self->service, self->config.instance,
              self->config.capacity);
    return 0;
}

static int s_on_reconnect_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    worker_t *self = arg;
    if (!self->dealer && s_connect(self) != 0)
        s_schedule_reconnect(self, "connect_failed");
    return 0;
}

/* Drops the connection (what was queued on it is lost; the broker re-dispatches) and connects
   again after a backoff delay. */
static void s_schedule_reconnect(worker_t *self, const char *why)
{
    if (self->dealer) {
        zloop_reader_end(self->loop, self->dealer);
        zsock_destroy(&self->dealer);
    }
    (*self->reconnects)++;
    int64_t delay = backoff_next_ms(&self->backoff);
    plog_warn("broker_lost", "reason=%s reconnect_in_ms=%" PRId64, why, delay);
    zloop_timer(self->loop, (size_t)delay, 1, s_on_reconnect_timer, self);
}

static int s_on_heartbeat_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    worker_t *self = arg;
    if (!self->dealer)
        return 0;
    if (zclock_mono() > self->broker_expires_at_ms) {
        s_schedule_reconnect(self, "heartbeat_expired");
        return 0;
    }
    proto_heartbeat_t *heartbeat = calloc(1, sizeof *heartbeat);
    if (!heartbeat)
        return 0;
    heartbeat->has_instance = heartbeat->has_kind = heartbeat->has_inflight = true;
    proto_name_set(heartbeat->instance, self->config.instance);
    proto_name_set(heartbeat->kind, "worker");
    heartbeat->inflight = (uint32_t)zlistx_size(self->outstanding);
    heartbeat->has_counters = true;
    for (size_t i = 0; i < self->counters.count; i++) {
        proto_name_set(heartbeat->counters[i].name, self->counters.counters[i].name);
        heartbeat->counters[i].value = self->counters.counters[i].value;
    }
    heartbeat->counters_count = (uint32_t)self->counters.count;
    S_SEND(self, PROTO_HEARTBEAT, heartbeat, heartbeat);
    free(heartbeat);
    return 0;
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
    S_SEND(self, PROTO_DRAIN, drain, &drain);
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
    proto_disconnect_t bye = {.has_reason = true};
    proto_name_set(bye.reason, held ? "drain_timeout" : "drained");
    S_SEND(self, PROTO_DISCONNECT, disconnect, &bye);
    plog_info("stopped", "outstanding=%zu", held);
    return -1;
}

int worker_run(worker_t *self, int signal_fd)
{
    self->signal_fd = signal_fd;
    zmq_pollitem_t signal_item = {NULL, signal_fd, ZMQ_POLLIN, 0};
    if (zloop_poller(self->loop, &signal_item, s_on_signal, self) != 0 ||
        zloop_timer(self->loop, (size_t)self->config.heartbeat_ms, 0, s_on_heartbeat_timer,
                    self) < 0 ||
        zloop_timer(self->loop, 20, 0, s_on_drain_timer, self) < 0)
        return 1;
    if (s_connect(self) != 0)
        s_schedule_reconnect(self, "connect_failed");
    zloop_start(self->loop);
    return self->result;
}

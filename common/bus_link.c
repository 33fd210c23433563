/*  bus_link.c - see bus_link.h. */
#include "bus_link.h"
#include "backoff.h"
#include "plog.h"
#include "../proto/proto.h"

#include <inttypes.h>
#include <unistd.h>

#define S_BATCH 512

#define T bus_link_config_t
const config_option_t bus_link_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_BROKER_ENDPOINT", T, broker_endpoint, "tcp://127.0.0.1:5555",
                      "the broker's ZeroMQ endpoint for requests"),
    CONFIG_STR_OPTION("PARLEY_INSTANCE", T, instance, "",
                      "this process's name in /stats (default: name-host-pid)"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_MS", T, heartbeat_ms, "1000", 10, 60000,
                      "heartbeat interval in milliseconds"),
    CONFIG_INT_OPTION("PARLEY_HEARTBEAT_LIVENESS", T, liveness, "3", 1, 100,
                      "heartbeats missed before the broker counts as gone"),
    CONFIG_INT_OPTION("PARLEY_RECONNECT_MIN_MS", T, reconnect_min_ms, "100", 1, 60000,
                      "first reconnect delay bound (ms); doubles with jitter"),
    CONFIG_INT_OPTION("PARLEY_RECONNECT_MAX_MS", T, reconnect_max_ms, "5000", 1, 600000,
                      "largest reconnect delay bound (ms)"),
    CONFIG_INT_OPTION("PARLEY_MAX_FRAME_BYTES", T, max_frame_bytes, "1048576", 1024, 268435456,
                      "largest message accepted, all frames together, in bytes"),
};
#undef T
const size_t bus_link_config_option_count =
    sizeof bus_link_config_options / sizeof bus_link_config_options[0];

struct bus_link_t {
    bus_link_config_t config;
    char kind[PROTO_NAME_MAX + 1];
    zloop_t *loop;                  /* borrowed, from bus_link_start */
    zsock_t *dealer;                /* NULL while waiting to reconnect */
    uint64_t generation;
    int64_t broker_expires_at_ms;
    backoff_t backoff;
    counter_set_t own_counters;     /* used when the owner gives none */
    counter_set_t *counters;        /* borrowed or &own_counters */
    uint64_t *reconnects, *rejected;
    uint32_t inflight;
    bus_link_connected_fn *connected;
    bus_link_message_fn *message;
    void *arg;
};

bus_link_t *bus_link_new(const bus_link_config_t *config, const char *kind, const char *label,
                         counter_set_t *counters, bus_link_connected_fn *connected,
                         bus_link_message_fn *message, void *arg)
{
    bus_link_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    proto_name_set(self->kind, kind);
    if (!*self->config.instance) {
        char host[40] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(self->config.instance, sizeof self->config.instance, "%.20s-%.30s-%d", label,
                 host, (int)getpid());
    }
    backoff_init(&self->backoff, config->reconnect_min_ms, config->reconnect_max_ms);
    self->counters = counters ? counters : &self->own_counters;
    self->reconnects = counter_set_require(self->counters, "reconnects");
    self->rejected = counter_set_require(self->counters, "rejected_messages");
    self->connected = connected;
    self->message = message;
    self->arg = arg;
    return self;
}

void bus_link_destroy(bus_link_t **self_p)
{
    bus_link_t *self = *self_p;
    if (!self)
        return;
    if (self->dealer) {
        proto_disconnect_t bye = {.has_reason = true};
        proto_name_set(bye.reason, "closing");
        BUS_LINK_SEND_HEADER(self, PROTO_DISCONNECT, disconnect, &bye);
        zsock_set_linger(self->dealer, 100); /* give the goodbye a moment to leave */
        if (self->loop)
            zloop_reader_end(self->loop, self->dealer);
        zsock_destroy(&self->dealer);
    }
    free(self);
    *self_p = NULL;
}

int bus_link_send(bus_link_t *self, const proto_buffer_t *envelope, zmq_msg_t *payload)
{
    if (!self->dealer)
        return -1;
    return proto_envelope_send(zsock_resolve(self->dealer), NULL, envelope, payload,
                               ZMQ_DONTWAIT);
}

void bus_link_set_inflight(bus_link_t *self, uint32_t inflight)
{
    self->inflight = inflight;
}

uint64_t bus_link_generation(const bus_link_t *self)
{
    return self->generation;
}

bool bus_link_connected(const bus_link_t *self)
{
    return self->dealer != NULL;
}

const char *bus_link_instance(const bus_link_t *self)
{
    return self->config.instance;
}

static void s_send_heartbeat(bus_link_t *self)
{
    proto_heartbeat_t *heartbeat = calloc(1, sizeof *heartbeat); /* 4.6 KB: not on the stack */
    if (!heartbeat)
        return;
    heartbeat->has_instance = heartbeat->has_kind = heartbeat->has_inflight = true;
    heartbeat->has_counters = true;
    proto_name_set(heartbeat->instance, self->config.instance);
    proto_name_set(heartbeat->kind, self->kind);
    heartbeat->inflight = self->inflight;
    for (size_t i = 0; i < self->counters->count; i++) {
        proto_name_set(heartbeat->counters[i].name, self->counters->counters[i].name);
        heartbeat->counters[i].value = self->counters->counters[i].value;
    }
    heartbeat->counters_count = (uint32_t)self->counters->count;
    BUS_LINK_SEND_HEADER(self, PROTO_HEARTBEAT, heartbeat, heartbeat);
    free(heartbeat);
}

static void s_reconnect(bus_link_t *self, const char *why);

static int s_on_dealer(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    bus_link_t *self = arg;
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH && self->dealer == sock; i++) {
        if (proto_frames_recv(&frames, zsock_resolve(sock), ZMQ_DONTWAIT) != 0)
            break;
        proto_envelope_t envelope;
        proto_reject_t reason = proto_envelope_parse(
            &frames, false, (size_t)self->config.max_frame_bytes, &envelope);
        if (reason != PROTO_OK) {
            (*self->rejected)++;
            plog_warn("message_rejected", "reason=%s bytes=%zu", proto_reject_name(reason),
                      frames.bytes);
        } else {
            self->broker_expires_at_ms =
                zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
            backoff_reset(&self->backoff);
            if (envelope.command == PROTO_DISCONNECT)
                s_reconnect(self, "broker_said_disconnect");
            else if (envelope.command != PROTO_HEARTBEAT)
                self->message(self, &envelope, self->arg);
        }
        proto_frames_close(&frames);
    }
    return 0;
}

/* Opens a new connection. Returns 0 or -1. */
static int s_connect(bus_link_t *self)
{
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    if (!dealer)
        return -1;
    zsock_set_linger(dealer, 0);
    zsock_set_sndhwm(dealer, 100000);
    zsock_set_rcvhwm(dealer, 100000);
    zsock_set_maxmsgsize(dealer, (int)(self->config.max_frame_bytes * 4));
    if (zsock_connect(dealer, "%s", self->config.broker_endpoint) != 0 ||
        zloop_reader(self->loop, dealer, s_on_dealer, self) != 0) {
        plog_error("connect_failed", "endpoint=%s", self->config.broker_endpoint);
        zsock_destroy(&dealer);
        return -1;
    }
    self->dealer = dealer;
    self->generation++;
    self->broker_expires_at_ms = zclock_mono() + self->config.heartbeat_ms * self->config.liveness;
    plog_info("connected", "broker=%s instance=%s generation=%" PRIu64,
              self->config.broker_endpoint, self->config.instance, self->generation);
    self->connected(self, self->arg);
    s_send_heartbeat(self);
    return 0;
}

static int s_on_reconnect_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    bus_link_t *self = arg;
    if (!self->dealer && s_connect(self) != 0)
        s_reconnect(self, "connect_failed");
    return 0;
}

/* Drops the connection and schedules the next one after a backoff delay. */
static void s_reconnect(bus_link_t *self, const char *why)
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
    bus_link_t *self = arg;
    if (!self->dealer)
        return 0;
    if (zclock_mono() > self->broker_expires_at_ms)
        s_reconnect(self, "heartbeat_expired");
    else
        s_send_heartbeat(self);
    return 0;
}

int bus_link_start(bus_link_t *self, zloop_t *loop)
{
    self->loop = loop;
    if (zloop_timer(loop, (size_t)self->config.heartbeat_ms, 0, s_on_heartbeat_timer, self) < 0)
        return -1;
    if (s_connect(self) != 0)
        s_reconnect(self, "connect_failed");
    return 0;
}

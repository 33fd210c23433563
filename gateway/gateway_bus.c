/*  gateway_bus.c - see gateway_bus.h. Calls, subscriptions, publications and counters go
    down to the bus thread through the `down` mailbox (the bus thread is woken by an eventfd
    on its zloop, and takes what waits there `batch_ms` later, so that what a few
    milliseconds of traffic made crosses to the broker in one burst: every hop after that, the
    broker, the workers and the replies' way back, then handles a burst per wake-up instead of
    a message); finished calls, events and the stop request come up through the `up`
    mailbox (lws is woken by lws_cancel_service). Neither side ever blocks on the other. The
    actor's pipe only carries the start-up outcome and the QUIT/BYE handshake. */
#include "gateway_bus.h"
#include "gateway_mailbox.h"
#include "../common/plog.h"
#include "../common/signals.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Events waiting for the lws thread beyond this are dropped (and counted): a gateway whose
   sockets cannot keep up must not grow without bound. */
#define S_EVENTS_QUEUED_MAX 200000

/* A wake-up that finds this many items in `down` takes them at once instead of waiting
   batch_ms: a loop turn that queued so much needs no company. */
#define S_DOWN_BURST_MAX 512

enum { S_CALL, S_SUB, S_UNSUB, S_PUB, S_COUNTERS, S_DONE, S_EVENT, S_STOP };

typedef struct {
    bus_client_config_t config;
    struct lws_context *context;
    int signal_fd;
    int64_t batch_ms;         /* `down` is taken this long after its first item (0: at once) */
    int wake_fd;              /* eventfd: something is waiting in `down` */
    gateway_mailbox_t *down;  /* lws thread -> bus thread */
    gateway_mailbox_t *up;    /* bus thread -> lws thread */
    char instance[PROTO_NAME_MAX + 1]; /* the bus client's name, set before READY */
} s_args_t;

struct gateway_bus_t {
    zactor_t *actor;
    s_args_t args;
    bool stop;
    bool wake_owed; /* something went into an empty `down` since the last gateway_bus_flush */
};

/* The bus thread's state. */
typedef struct {
    zsock_t *pipe;
    s_args_t *args;
    bus_client_t *client;
    uint64_t *events_dropped;
    bool take_timer_armed; /* `down` is taken when the batch timer fires */
    bool closing;  /* the lws side is going away: free finished calls here */
} s_thread_t;

gateway_call_t *gateway_call_new(const char *service, const char *type, const uint8_t *payload,
                                 size_t size, uint32_t timeout_ms)
{
    gateway_call_t *call = calloc(1, sizeof *call + size); /* the payload right after it */
    if (!call)
        return NULL;
    call->payload = (uint8_t *)(call + 1);
    proto_name_set(call->service, service);
    proto_name_set(call->type, type);
    if (size)
        memcpy(call->payload, payload, size);
    call->size = size;
    call->timeout_ms = timeout_ms;
    return call;
}

void gateway_event_free(gateway_event_t **event_p)
{
    gateway_event_t *event = *event_p;
    if (event) {
        free(event); /* and its payload, in the same block */
        *event_p = NULL;
    }
}

static gateway_event_t *s_event_new(const char *topic, size_t topic_size, const char *type,
                                    const uint8_t *payload, size_t size)
{
    if (topic_size >= sizeof ((gateway_event_t *)0)->topic)
        return NULL;
    gateway_event_t *event = malloc(sizeof *event + size); /* the payload right after it */
    if (!event)
        return NULL;
    event->payload = (uint8_t *)(event + 1);
    memcpy(event->topic, topic, topic_size);
    event->topic[topic_size] = '\0';
    proto_name_set(event->type, type);
    if (size)
        memcpy(event->payload, payload, size);
    event->size = size;
    return event;
}

void gateway_call_free(gateway_call_t **call_p)
{
    gateway_call_t *call = *call_p;
    if (call) {
        free(call->reply); /* (the payload is in the call's own block) */
        free(call->error_message);
        free(call);
        *call_p = NULL;
    }
}

void gateway_call_fail(gateway_call_t *call, const char *code, const char *message)
{
    proto_name_set(call->error_code, code);
    free(call->error_message);
    call->error_message = NULL;
    size_t length = message ? strnlen(message, PROTO_TEXT_MAX) : 0;
    if (message && (call->error_message = malloc(length + 1))) {
        memcpy(call->error_message, message, length);
        call->error_message[length] = '\0';
    }
}

const char *gateway_call_error(const gateway_call_t *call)
{
    return call->error_message ? call->error_message : "";
}

/* Frees an item left in a mailbox. */
static void s_item_free(int kind, void *item)
{
    if (kind == S_CALL || kind == S_DONE) {
        gateway_call_t *call = item;
        gateway_call_free(&call);
    } else if (kind == S_PUB || kind == S_EVENT) {
        gateway_event_t *event = item;
        gateway_event_free(&event);
    } else
        free(item);
}

/* Queues an item for the lws thread, waking it when it may be asleep. Returns 0 or -1 (out
   of memory: the item was not queued). */
static int s_up(s_thread_t *self, int kind, void *item)
{
    int rc = gateway_mailbox_put(self->args->up, kind, item);
    if (rc == 1)
        lws_cancel_service(self->args->context);
    return rc < 0 ? -1 : 0;
}

/* Hands a finished call back to the lws thread. */
static void s_hand_back(s_thread_t *self, gateway_call_t *call)
{
    if (self->closing || s_up(self, S_DONE, call) != 0)
        gateway_call_free(&call);
}

/* A call out on the bus: what its reply callback needs. */
typedef struct {
    s_thread_t *thread;
    gateway_call_t *call;
} s_pending_t;

static void s_on_reply(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_pending_t *pending = arg;
    s_thread_t *self = pending->thread;
    gateway_call_t *call = pending->call;
    free(pending);
    if (result->error_code) {
        gateway_call_fail(call, result->error_code, result->error_message);
    } else if (result->payload_size) {
        call->reply = malloc(result->payload_size);
        if (call->reply) {
            memcpy(call->reply, result->payload, result->payload_size);
            call->reply_size = result->payload_size;
        } else
            proto_name_set(call->error_code, "internal");
    }
    s_hand_back(self, call);
}

static void s_on_event(bus_client_t *client, const char *topic, size_t topic_size,
                       const proto_event_t *header, const uint8_t *payload, size_t size,
                       void *arg)
{
    s_thread_t *self = arg;
    if (self->closing)
        return;
    /* the lws side delivered its own events to its own sockets already (gateway_ws) */
    if (header->has_origin && strcmp(header->origin, bus_client_instance(client)) == 0)
        return;
    if (gateway_mailbox_size(self->args->up) >= S_EVENTS_QUEUED_MAX) {
        if ((*self->events_dropped)++ % 10000 == 0)
            plog_warn("events_dropped", "queued=%d reason=\"the sockets do not keep up\"",
                      S_EVENTS_QUEUED_MAX);
        return;
    }
    gateway_event_t *event = s_event_new(topic, topic_size, header->type, payload, size);
    if (event && s_up(self, S_EVENT, event) != 0)
        gateway_event_free(&event);
}

/* A snapshot of the lws side's counters, on its way to the bus thread. */
typedef struct {
    size_t count;
    char names[32][PROTO_NAME_MAX + 1];
    uint64_t values[32];
} s_counters_t;

/* One item from the lws thread. */
static void s_on_item(s_thread_t *self, int kind, void *item)
{
    if (kind == S_SUB || kind == S_UNSUB) {
        char *topic = item; /* a string the lws side allocated */
        if (kind == S_SUB)
            bus_client_subscribe(self->client, topic);
        else
            bus_client_unsubscribe(self->client, topic);
        free(topic);
    } else if (kind == S_COUNTERS) {
        s_counters_t *counters = item;
        for (size_t i = 0; i < counters->count; i++)
            *bus_client_counter(self->client, counters->names[i]) = counters->values[i];
        free(counters);
    } else if (kind == S_PUB) {
        gateway_event_t *event = item;
        bus_client_publish(self->client, event->topic, event->type, event->payload, event->size);
        gateway_event_free(&event);
    } else if (kind == S_CALL) {
        gateway_call_t *call = item;
        s_pending_t *pending = malloc(sizeof *pending);
        uint64_t id = 0;
        if (pending) {
            *pending = (s_pending_t){self, call};
            id = bus_client_request_ordered(self->client, call->service, call->type,
                                            call->order_key[0] ? call->order_key : NULL,
                                            call->payload, call->size, call->timeout_ms,
                                            s_on_reply, pending);
        }
        if (!id) {
            free(pending);
            gateway_call_fail(call, "overloaded",
                              "the gateway holds too many requests; retry later");
            s_hand_back(self, call);
        }
    } else
        s_item_free(kind, item);
}

/* Takes everything the lws thread queued. */
static void s_take_down(s_thread_t *self)
{
    int kind;
    void *item;
    while (gateway_mailbox_take(self->args->down, &kind, &item))
        s_on_item(self, kind, item);
}

static int s_on_take_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_thread_t *self = arg;
    self->take_timer_armed = false;
    s_take_down(self);
    return 0;
}

/* The lws thread queued something: take it now, or when the batch timer fires (armed by the
   first wake-up of a batch; later ones find it armed). */
static int s_on_wake(zloop_t *loop, zmq_pollitem_t *poll_item, void *arg)
{
    s_thread_t *self = arg;
    uint64_t count;
    if (read(poll_item->fd, &count, sizeof count) < 0 && errno != EAGAIN)
        plog_warn("wake_read_failed", "errno=%d", errno);
    if (self->take_timer_armed)
        return 0; /* the timer takes it with the rest */
    if (self->args->batch_ms > 0 && gateway_mailbox_size(self->args->down) < S_DOWN_BURST_MAX &&
        zloop_timer(loop, (size_t)self->args->batch_ms, 1, s_on_take_timer, self) >= 0) {
        self->take_timer_armed = true;
        return 0;
    }
    s_take_down(self);
    return 0;
}

static int s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    s_thread_t *self = arg;
    char *command = zstr_recv(pipe);
    int rc = 0;
    if (!command || strcmp(command, "$TERM") == 0)
        rc = -1;
    else if (strcmp(command, "QUIT") == 0) {
        /* What the lws side queued for the broker still goes (a batch may be waiting for its
           timer: the last presence updates, say); then what is out is answered "cancelled"
           and freed here, so the lws side knows nothing more will come up. */
        s_take_down(self);
        self->closing = true;
        bus_client_cancel_all(self->client);
        zstr_send(pipe, "BYE");
        rc = -1;
    }
    zstr_free(&command);
    return rc;
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    s_thread_t *self = arg;
    int signal = signals_read(item->fd);
    plog_info("signal", "signal=%d", signal);
    s_up(self, S_STOP, NULL);
    return 0;
}

static void s_actor(zsock_t *pipe, void *arg)
{
    zsock_signal(pipe, 0); /* zactor_new waits for this; the outcome follows as a string */
    prctl(PR_SET_NAME, "gateway-bus"); /* its name in top -H, ps -L and the benchmark */
    s_thread_t self = {.pipe = pipe, .args = arg};
    self.client = bus_client_new(&self.args->config, "gateway");
    zloop_t *loop = zloop_new();
    zmq_pollitem_t signal_item = {.fd = self.args->signal_fd, .events = ZMQ_POLLIN};
    zmq_pollitem_t wake_item = {.fd = self.args->wake_fd, .events = ZMQ_POLLIN};
    if (self.client) {
        proto_name_set(self.args->instance, bus_client_instance(self.client));
        bus_client_on_event(self.client, s_on_event, &self);
        self.events_dropped = bus_client_counter(self.client, "events_dropped");
    }
    if (!self.client || !loop || bus_client_attach(self.client, loop) != 0 ||
        zloop_reader(loop, pipe, s_on_pipe, &self) != 0 ||
        zloop_poller(loop, &signal_item, s_on_signal, &self) != 0 ||
        zloop_poller(loop, &wake_item, s_on_wake, &self) != 0) {
        plog_error("bus_start_failed", NULL);
        zstr_send(pipe, "FAILED");
    } else {
        zstr_send(pipe, "READY");
        zloop_start(loop);
        if (!self.closing) {
            self.closing = true;
            bus_client_cancel_all(self.client);
        }
    }
    bus_client_destroy(&self.client); /* first: it takes its sockets off the loop */
    zloop_destroy(&loop);
}

/* Wakes the bus thread (something is in `down`). This function can't fail in a way that
   matters: a full eventfd counter still wakes it. */
static void s_wake(gateway_bus_t *self)
{
    uint64_t one = 1;
    if (write(self->args.wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        plog_warn("wake_write_failed", "errno=%d", errno);
}

/* Queues an item for the bus thread, which gateway_bus_flush wakes at the end of the lws
   loop's turn: one wake-up for all a turn queued. Returns 0, or -1 (out of memory: not
   queued). */
static int s_down(gateway_bus_t *self, int kind, void *item)
{
    int rc = gateway_mailbox_put(self->args.down, kind, item);
    if (rc == 1)
        self->wake_owed = true;
    return rc < 0 ? -1 : 0;
}

void gateway_bus_flush(gateway_bus_t *self)
{
    if (self->wake_owed) {
        self->wake_owed = false;
        s_wake(self);
    }
}

static void s_free_bus(gateway_bus_t *self)
{
    gateway_mailbox_destroy(&self->args.down, s_item_free);
    gateway_mailbox_destroy(&self->args.up, s_item_free);
    if (self->args.wake_fd >= 0)
        close(self->args.wake_fd);
    free(self);
}

gateway_bus_t *gateway_bus_new(const bus_client_config_t *config, int64_t batch_ms,
                               struct lws_context *context, int signal_fd)
{
    gateway_bus_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->args = (s_args_t){.config = *config, .context = context, .signal_fd = signal_fd,
                            .batch_ms = batch_ms,
                            .wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
                            .down = gateway_mailbox_new(), .up = gateway_mailbox_new()};
    if (self->args.wake_fd < 0 || !self->args.down || !self->args.up) {
        s_free_bus(self);
        return NULL;
    }
    self->actor = zactor_new(s_actor, &self->args);
    char *outcome = self->actor ? zstr_recv(self->actor) : NULL;
    bool ready = outcome && strcmp(outcome, "READY") == 0;
    zstr_free(&outcome);
    if (!ready) {
        zactor_destroy(&self->actor);
        s_free_bus(self);
        return NULL;
    }
    return self;
}

void gateway_bus_destroy(gateway_bus_t **self_p)
{
    gateway_bus_t *self = *self_p;
    if (!self)
        return;
    gateway_bus_flush(self);
    /* The thread answers what is still out and frees what waits for it, then says BYE. */
    zsock_set_rcvtimeo(self->actor, 5000);
    if (zstr_send(self->actor, "QUIT") == 0) {
        char *bye = zstr_recv(self->actor);
        zstr_free(&bye);
    }
    zactor_destroy(&self->actor);
    s_free_bus(self); /* and whatever came up that nobody took */
    *self_p = NULL;
}

int gateway_bus_call(gateway_bus_t *self, gateway_call_t **call_p)
{
    gateway_call_t *call = *call_p;
    *call_p = NULL;
    if (s_down(self, S_CALL, call) != 0) {
        gateway_call_free(&call);
        return -1;
    }
    return 0;
}

bool gateway_bus_next(gateway_bus_t *self, gateway_call_t **call, gateway_event_t **event)
{
    *call = NULL;
    *event = NULL;
    int kind;
    void *item;
    while (gateway_mailbox_take(self->args.up, &kind, &item)) {
        if (kind == S_STOP)
            self->stop = true;
        else if (kind == S_DONE)
            *call = item;
        else if (kind == S_EVENT)
            *event = item;
        else
            s_item_free(kind, item);
        if (*call || *event)
            return true;
    }
    return false;
}

gateway_call_t *gateway_bus_next_done(gateway_bus_t *self)
{
    gateway_call_t *call;
    gateway_event_t *event;
    while (gateway_bus_next(self, &call, &event)) {
        if (call)
            return call;
        gateway_event_free(&event);
    }
    return NULL;
}

static int s_send_topic(gateway_bus_t *self, int kind, const char *topic)
{
    char *copy = strdup(topic);
    if (!copy || s_down(self, kind, copy) != 0) {
        free(copy);
        return -1;
    }
    return 0;
}

int gateway_bus_subscribe(gateway_bus_t *self, const char *topic)
{
    return s_send_topic(self, S_SUB, topic);
}

int gateway_bus_unsubscribe(gateway_bus_t *self, const char *topic)
{
    return s_send_topic(self, S_UNSUB, topic);
}

int gateway_bus_counters(gateway_bus_t *self, const char *const *names, const uint64_t *values,
                         size_t count)
{
    s_counters_t *counters = calloc(1, sizeof *counters);
    if (!counters)
        return -1;
    for (size_t i = 0; i < count && i < 32; i++) {
        proto_name_set(counters->names[i], names[i]);
        counters->values[i] = values[i];
        counters->count++;
    }
    if (s_down(self, S_COUNTERS, counters) != 0) {
        free(counters);
        return -1;
    }
    return 0;
}

int gateway_bus_publish(gateway_bus_t *self, const char *topic, const char *type,
                        const uint8_t *payload, size_t size)
{
    gateway_event_t *event = s_event_new(topic, strlen(topic), type, payload, size);
    if (!event || s_down(self, S_PUB, event) != 0) {
        gateway_event_free(&event);
        return -1;
    }
    return 0;
}

bool gateway_bus_stop_requested(const gateway_bus_t *self)
{
    return self->stop;
}

const char *gateway_bus_instance(const gateway_bus_t *self)
{
    return self->args.instance;
}

/*  gateway_bus.c - see gateway_bus.h. The actor's pipe carries "CALL" + pointer, "SUB" /
    "UNSUB" + topic and "PUB" + event pointer down, and "DONE" + call, "EVENT" + event or
    "STOP" up. */
#include "gateway_bus.h"
#include "../common/plog.h"
#include "../common/signals.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    bus_client_config_t config;
    struct lws_context *context;
    int signal_fd;
} s_args_t;

struct gateway_bus_t {
    zactor_t *actor;
    s_args_t args;
    bool stop;
};

/* The bus thread's state. */
typedef struct {
    zsock_t *pipe;
    s_args_t *args;
    bus_client_t *client;
    bool closing;  /* the lws side is going away: free finished calls here */
} s_thread_t;

gateway_call_t *gateway_call_new(const char *service, const char *type, const uint8_t *payload,
                                 size_t size, uint32_t timeout_ms)
{
    gateway_call_t *call = calloc(1, sizeof *call);
    if (!call || (size && !(call->payload = malloc(size)))) {
        free(call);
        return NULL;
    }
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
        free(event->payload);
        free(event);
        *event_p = NULL;
    }
}

static gateway_event_t *s_event_new(const char *topic, size_t topic_size, const char *type,
                                    const uint8_t *payload, size_t size)
{
    gateway_event_t *event = calloc(1, sizeof *event);
    if (!event || topic_size >= sizeof event->topic || (size && !(event->payload = malloc(size)))) {
        free(event);
        return NULL;
    }
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
        free(call->payload);
        free(call->reply);
        free(call);
        *call_p = NULL;
    }
}

/* Hands a finished call back to the lws thread and wakes it. */
static void s_hand_back(s_thread_t *self, gateway_call_t *call)
{
    if (self->closing || zsock_send(self->pipe, "sp", "DONE", call) != 0) {
        gateway_call_free(&call);
        return;
    }
    lws_cancel_service(self->args->context);
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
        proto_name_set(call->error_code, result->error_code);
        snprintf(call->error_message, sizeof call->error_message, "%s",
                 result->error_message ? result->error_message : "");
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
    gateway_event_t *event = s_event_new(topic, topic_size, header->type, payload, size);
    if (!event)
        return;
    if (zsock_send(self->pipe, "sp", "EVENT", event) != 0) {
        gateway_event_free(&event);
        return;
    }
    lws_cancel_service(self->args->context);
}

/* A snapshot of the lws side's counters, on its way to the bus thread. */
typedef struct {
    size_t count;
    char names[32][PROTO_NAME_MAX + 1];
    uint64_t values[32];
} s_counters_t;

static int s_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop;
    s_thread_t *self = arg;
    char *command = NULL;
    gateway_call_t *call = NULL;
    if (zsock_recv(pipe, "sp", &command, &call) != 0) {
        free(command);
        return -1;
    }
    int rc = 0;
    if (command && strcmp(command, "$TERM") == 0)
        rc = -1;
    else if (command && strcmp(command, "QUIT") == 0) {
        /* What is still out is answered "cancelled" and freed here; then the lws side knows
           nothing more will come up the pipe. */
        self->closing = true;
        bus_client_cancel_all(self->client);
        zsock_send(pipe, "sp", "BYE", NULL);
        rc = -1;
    }
    else if (command && (strcmp(command, "SUB") == 0 || strcmp(command, "UNSUB") == 0) && call) {
        char *topic = (char *)call; /* a string the lws side allocated */
        if (command[0] == 'S')
            bus_client_subscribe(self->client, topic);
        else
            bus_client_unsubscribe(self->client, topic);
        free(topic);
    } else if (command && strcmp(command, "COUNTERS") == 0 && call) {
        s_counters_t *counters = (s_counters_t *)call;
        for (size_t i = 0; i < counters->count; i++)
            *bus_client_counter(self->client, counters->names[i]) = counters->values[i];
        free(counters);
    } else if (command && strcmp(command, "PUB") == 0 && call) {
        gateway_event_t *event = (gateway_event_t *)call;
        bus_client_publish(self->client, event->topic, event->type, event->payload, event->size);
        gateway_event_free(&event);
    } else if (command && strcmp(command, "CALL") == 0 && call) {
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
            proto_name_set(call->error_code, "overloaded");
            snprintf(call->error_message, sizeof call->error_message,
                     "the gateway holds too many requests; retry later");
            s_hand_back(self, call);
        }
    }
    free(command);
    return rc;
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    s_thread_t *self = arg;
    int signal = signals_read(item->fd);
    plog_info("signal", "signal=%d", signal);
    zsock_send(self->pipe, "sp", "STOP", NULL);
    lws_cancel_service(self->args->context);
    return 0;
}

static void s_actor(zsock_t *pipe, void *arg)
{
    zsock_signal(pipe, 0); /* zactor_new waits for this; the outcome follows as a string */
    s_thread_t self = {.pipe = pipe, .args = arg};
    self.client = bus_client_new(&self.args->config, "gateway");
    zloop_t *loop = zloop_new();
    zmq_pollitem_t signal_item = {.fd = self.args->signal_fd, .events = ZMQ_POLLIN};
    if (self.client)
        bus_client_on_event(self.client, s_on_event, &self);
    if (!self.client || !loop || bus_client_attach(self.client, loop) != 0 ||
        zloop_reader(loop, pipe, s_on_pipe, &self) != 0 ||
        zloop_poller(loop, &signal_item, s_on_signal, &self) != 0) {
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

gateway_bus_t *gateway_bus_new(const bus_client_config_t *config, struct lws_context *context,
                               int signal_fd)
{
    gateway_bus_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->args = (s_args_t){.config = *config, .context = context, .signal_fd = signal_fd};
    self->actor = zactor_new(s_actor, &self->args);
    char *outcome = self->actor ? zstr_recv(self->actor) : NULL;
    bool ready = outcome && strcmp(outcome, "READY") == 0;
    zstr_free(&outcome);
    if (!ready) {
        zactor_destroy(&self->actor);
        free(self);
        return NULL;
    }
    return self;
}

void gateway_bus_destroy(gateway_bus_t **self_p)
{
    gateway_bus_t *self = *self_p;
    if (!self)
        return;
    /* Take back every call the thread hands up until it says BYE, then stop it. */
    zsock_set_rcvtimeo(self->actor, 5000);
    if (zsock_send(self->actor, "sp", "QUIT", NULL) == 0)
        while (true) {
            char *command = NULL;
            gateway_call_t *call = NULL;
            if (zsock_recv(self->actor, "sp", &command, &call) != 0)
                break;
            bool bye = command && strcmp(command, "BYE") == 0;
            bool event = command && strcmp(command, "EVENT") == 0;
            free(command);
            if (event) {
                gateway_event_t *dropped = (gateway_event_t *)call;
                gateway_event_free(&dropped);
            } else
                gateway_call_free(&call);
            if (bye)
                break;
        }
    zactor_destroy(&self->actor);
    free(self);
    *self_p = NULL;
}

int gateway_bus_call(gateway_bus_t *self, gateway_call_t **call_p)
{
    gateway_call_t *call = *call_p;
    *call_p = NULL;
    if (zsock_send(self->actor, "sp", "CALL", call) != 0) {
        gateway_call_free(&call);
        return -1;
    }
    return 0;
}

bool gateway_bus_next(gateway_bus_t *self, gateway_call_t **call, gateway_event_t **event)
{
    *call = NULL;
    *event = NULL;
    while (self->actor && (zsock_events(self->actor) & ZMQ_POLLIN)) {
        char *command = NULL;
        void *item = NULL;
        if (zsock_recv(self->actor, "sp", &command, &item) != 0)
            return false;
        if (command && strcmp(command, "STOP") == 0)
            self->stop = true;
        else if (command && strcmp(command, "DONE") == 0 && item)
            *call = item;
        else if (command && strcmp(command, "EVENT") == 0 && item)
            *event = item;
        free(command);
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

static int s_send_topic(gateway_bus_t *self, const char *command, const char *topic)
{
    char *copy = strdup(topic);
    if (!copy || zsock_send(self->actor, "sp", command, copy) != 0) {
        free(copy);
        return -1;
    }
    return 0;
}

int gateway_bus_subscribe(gateway_bus_t *self, const char *topic)
{
    return s_send_topic(self, "SUB", topic);
}

int gateway_bus_unsubscribe(gateway_bus_t *self, const char *topic)
{
    return s_send_topic(self, "UNSUB", topic);
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
    if (zsock_send(self->actor, "sp", "COUNTERS", counters) != 0) {
        free(counters);
        return -1;
    }
    return 0;
}

int gateway_bus_publish(gateway_bus_t *self, const char *topic, const char *type,
                        const uint8_t *payload, size_t size)
{
    gateway_event_t *event = s_event_new(topic, strlen(topic), type, payload, size);
    if (!event || zsock_send(self->actor, "sp", "PUB", event) != 0) {
        gateway_event_free(&event);
        return -1;
    }
    return 0;
}

bool gateway_bus_stop_requested(const gateway_bus_t *self)
{
    return self->stop;
}

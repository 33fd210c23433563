/*  gateway_bus.h - the gateway's ZeroMQ side, on a thread of its own.

    libwebsockets runs the gateway's sockets on the main thread with its own event loop; the
    bus client (czmq, zloop) runs here. The lws side hands over calls (a request to a service)
    and takes back finished ones and events; the two threads exchange them through unbounded
    mailboxes (gateway_mailbox.h: a bounded queue each way deadlocked under load), and a
    batch of hand-backs wakes lws once with lws_cancel_service(), so lws sees
    LWS_CALLBACK_EVENT_WAIT_CANCELLED and drains gateway_bus_next(). Calls move by pointer:
    whoever holds a call owns it. This thread also reads the signal fd and asks lws to stop
    (gateway_bus_stop_requested). Events beyond 200,000 waiting for the lws side are dropped
    and counted (events_dropped).

    Every function here is for the lws thread only. */
#ifndef GATEWAY_BUS_H
#define GATEWAY_BUS_H

#include "../common/bus_client.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t ticket;                      /* the HTTP side's id for it (websockets: 0) */
    int owner;                            /* which lws-side module made it (GATEWAY_OWNER_*) */
    char service[PROTO_NAME_MAX + 1];
    char type[PROTO_NAME_MAX + 1];
    char order_key[PROTO_NAME_MAX + 1];   /* "" for none */
    uint8_t *payload;                     /* in the call's own block */
    size_t size;
    uint32_t timeout_ms;
    /* the result, filled by the bus thread */
    char error_code[PROTO_NAME_MAX + 1];  /* "" on success */
    char *error_message;                  /* owned, NULL on success: see gateway_call_error */
    uint8_t *reply;                       /* owned, may be NULL */
    size_t reply_size;
    /* the caller's own notes (whom to answer, how), handed back untouched with the result:
       the caller keeps no table of its calls */
    union {
        uint64_t align;
        uint8_t bytes[256];
    } note;
} gateway_call_t;

/* Returns a new call for service/type with a copy of payload, or NULL. */
gateway_call_t *gateway_call_new(const char *service, const char *type, const uint8_t *payload,
                                 size_t size, uint32_t timeout_ms);
void gateway_call_free(gateway_call_t **call_p);

/* Marks call failed with code and a copy of message. (The message lives apart from the call
   so that a call, which every chat message makes, stays small.) */
void gateway_call_fail(gateway_call_t *call, const char *code, const char *message);

/* The failed call's message ("" when there is none). */
const char *gateway_call_error(const gateway_call_t *call);

enum { GATEWAY_OWNER_HTTP = 0, GATEWAY_OWNER_WS = 1 };

/* An event from the broker for the lws side (owned by whoever holds it). */
typedef struct {
    char topic[256];
    char type[PROTO_NAME_MAX + 1];
    uint8_t *payload; /* in the event's own block */
    size_t size;
} gateway_event_t;

void gateway_event_free(gateway_event_t **event_p);

typedef struct gateway_bus_t gateway_bus_t;

/* Starts the bus thread: connects to the broker with config (copied), watches signal_fd and
   wakes context (borrowed: must outlive the bus). What the calls below queue leaves for the
   broker batch_ms after the first of a batch was queued (0: at once; see gateway_bus.c).
   Returns NULL on failure. */
gateway_bus_t *gateway_bus_new(const bus_client_config_t *config, int64_t batch_ms,
                               struct lws_context *context, int signal_fd);

/* Stops the thread and frees everything: what the calls below queued still goes to the
   broker; calls waiting for an answer are dropped, unanswered. */
void gateway_bus_destroy(gateway_bus_t **self_p);

/* Wakes the bus thread for what the calls below queued since the last flush: the lws loop
   calls this once per turn, so a busy turn costs one wake-up, not one per item. */
void gateway_bus_flush(gateway_bus_t *self);

/* Hands call over (ownership passes). Returns 0, or -1 when it could not be queued (the call
   is then freed and *call_p set to NULL all the same). */
int gateway_bus_call(gateway_bus_t *self, gateway_call_t **call_p);

/* Subscribes to / unsubscribes from events whose topic starts with topic. Returns 0 or -1. */
int gateway_bus_subscribe(gateway_bus_t *self, const char *topic);
int gateway_bus_unsubscribe(gateway_bus_t *self, const char *topic);

/* Sets the gateway's counters (names and values copied) that ride in its heartbeats to the
   broker (its /stats "clients"). Returns 0 or -1. */
int gateway_bus_counters(gateway_bus_t *self, const char *const *names, const uint64_t *values,
                         size_t count);

/* Publishes an event (payload copied) for the other gateways and services. The event does
   not come back to this gateway: the caller delivers it to its own sockets itself. Returns 0
   or -1. */
int gateway_bus_publish(gateway_bus_t *self, const char *topic, const char *type,
                        const uint8_t *payload, size_t size);

/* The next finished call or event, whichever came first (caller owns it; the other pointer
   is set to NULL). Returns false when there is nothing now. */
bool gateway_bus_next(gateway_bus_t *self, gateway_call_t **call, gateway_event_t **event);

/* The next finished call (caller owns it), or NULL when there is none now; events met on
   the way are dropped (for users that subscribe to nothing). */
gateway_call_t *gateway_bus_next_done(gateway_bus_t *self);

/* The bus client's name: the origin of what this gateway publishes, and of the events
   it drops as its own. */
const char *gateway_bus_instance(const gateway_bus_t *self);

/* True once a SIGTERM or SIGINT arrived. */
bool gateway_bus_stop_requested(const gateway_bus_t *self);

#endif

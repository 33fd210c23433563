/*  bus_client.h - the client side of the internal bus, used by gateways (and test tools).

    Asynchronous requests to services through the broker, each with a deadline and a callback
    that fires exactly once: with the reply, the service's or broker's error, or "timeout".
    Events: publish on a topic, subscribe to topics, one callback for what arrives.

    Delivery: requests are held (with their payload) until answered, so when the broker goes
    away (missed heartbeats or DISCONNECT) the client reconnects and resends every request still
    within its deadline; services are idempotent by design, and a second answer for the same
    request is dropped here, so the caller sees each answer once. Bounded: at most max_pending
    requests are held; bus_client_request() refuses more.

    Runs inside a zloop (bus_client_attach). Single-threaded. */
#ifndef BUS_CLIENT_H
#define BUS_CLIENT_H

#include "bus_link.h"
#include "config.h"
#include "../proto/proto.h"

#include <czmq.h>
#include <stdint.h>

typedef struct {
    bus_link_config_t link; /* connection to the broker (its own option table) */
    char events_in[256];    /* the broker's XSUB: we publish here */
    char events_out[256];   /* the broker's XPUB: we subscribe here */
    int64_t max_pending;
} bus_client_config_t;

/* The client's own options; load these and bus_link_config_options (into config.link). */
extern const config_option_t bus_client_config_options[];
extern const size_t bus_client_config_option_count;

typedef struct bus_client_t bus_client_t;

typedef struct {
    uint64_t id;               /* as returned by bus_client_request */
    const char *error_code;    /* NULL on success; else "timeout", "no_service", ... */
    const char *error_message; /* NULL on success */
    const uint8_t *payload;    /* the reply (borrowed for the callback's duration) */
    size_t payload_size;
} bus_result_t;

typedef void(bus_reply_fn)(bus_client_t *client, const bus_result_t *result, void *arg);

/* An event: topic (not NUL-terminated), its header, and payload, all borrowed. */
typedef void(bus_event_fn)(bus_client_t *client, const char *topic, size_t topic_size,
                           const proto_event_t *header, const uint8_t *payload, size_t size,
                           void *arg);

/* Returns a client connected to the broker's three endpoints, or NULL. kind is what the
   broker's stats call it ("gateway", "probe"). config is copied. */
bus_client_t *bus_client_new(const bus_client_config_t *config, const char *kind);

/* Says DISCONNECT to the broker, frees everything; pending requests are dropped without
   callbacks. Accepts NULL. */
void bus_client_destroy(bus_client_t **self_p);

/* Registers sockets and timers on loop (borrowed: destroy the client before the loop).
   Returns 0 or -1. */
int bus_client_attach(bus_client_t *self, zloop_t *loop);

/* Sends a request; payload is copied. fn is called exactly once later, never from inside this
   call. Returns the request id (> 0), or 0 when refused (too many pending, invalid names): then
   fn is never called. */
uint64_t bus_client_request(bus_client_t *self, const char *service, const char *type,
                            const uint8_t *payload, size_t size, uint32_t timeout_ms,
                            bus_reply_fn *fn, void *arg);

/* Same, with an order key (a NAME): the broker runs requests of one service that carry the
   same key one at a time, in the order this client made them (e.g. the messages of one
   conversation). order_key NULL is bus_client_request. */
uint64_t bus_client_request_ordered(bus_client_t *self, const char *service, const char *type,
                                    const char *order_key, const uint8_t *payload, size_t size,
                                    uint32_t timeout_ms, bus_reply_fn *fn, void *arg);

/* Answers every pending request at once with the error "cancelled" (their callbacks run), so
   that an owner shutting down can free what it lent them. */
void bus_client_cancel_all(bus_client_t *self);

/* Publishes an event. Returns 0, or -1 when it could not be queued. */
int bus_client_publish(bus_client_t *self, const char *topic, const char *type,
                       const uint8_t *payload, size_t size);

/* Subscribes to / unsubscribes from a topic prefix. Returns 0 or -1. */
int bus_client_subscribe(bus_client_t *self, const char *topic);
int bus_client_unsubscribe(bus_client_t *self, const char *topic);

/* This client's instance name, as its events carry it in their origin (borrowed). This
   function can't fail. */
const char *bus_client_instance(const bus_client_t *self);

/* Sets the callback for arriving events. */
void bus_client_on_event(bus_client_t *self, bus_event_fn *fn, void *arg);

/* Requests held, waiting for an answer. */
size_t bus_client_pending(const bus_client_t *self);

/* A counter that rides in this client's heartbeats. Never NULL. */
uint64_t *bus_client_counter(bus_client_t *self, const char *name);

#endif

/*  bus_link.h - one peer's connection to the broker: the part that workers and clients share.

    Owns a DEALER socket to the broker's request endpoint and keeps it alive: heartbeats every
    heartbeat_ms (carrying the owner's counters), declares the broker gone after `liveness`
    silent intervals or a DISCONNECT, then closes the socket (what was queued on it is dropped)
    and connects again after a jittered exponential backoff. Every received message is checked
    (proto_envelope_parse) before the owner sees it; bad ones are counted and dropped.

    The owner (worker.c, bus_client.c) gets two callbacks: `connected` after each (re)connect,
    to say READY or resend what it holds, and `message` for each valid message other than
    HEARTBEAT and DISCONNECT, which the link handles itself. Runs in the owner's zloop. */
#ifndef BUS_LINK_H
#define BUS_LINK_H

#include "config.h"
#include "counter_set.h"
#include "../proto/proto_envelope.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char broker_endpoint[256];
    char instance[64];          /* name in the broker's stats; default <label>-<host>-<pid> */
    int64_t heartbeat_ms;
    int64_t liveness;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t max_frame_bytes;
} bus_link_config_t;

extern const config_option_t bus_link_config_options[];
extern const size_t bus_link_config_option_count;

typedef struct bus_link_t bus_link_t;

typedef void(bus_link_connected_fn)(bus_link_t *link, void *arg);
typedef void(bus_link_message_fn)(bus_link_t *link, proto_envelope_t *envelope, void *arg);

/* Returns a new link, not yet connected, or NULL when memory runs out. config is copied. kind
   is what the owner calls itself in heartbeats ("worker", "gateway"); label starts the default
   instance name. counters (borrowed, may be NULL) ride in every heartbeat; the link adds its
   own "reconnects" and "rejected_messages" to them. */
bus_link_t *bus_link_new(const bus_link_config_t *config, const char *kind, const char *label,
                         counter_set_t *counters, bus_link_connected_fn *connected,
                         bus_link_message_fn *message, void *arg);

/* Says DISCONNECT (when connected) and frees the link; sets *self_p to NULL. Accepts NULL. */
void bus_link_destroy(bus_link_t **self_p);

/* Connects now and registers the socket and heartbeat timer on loop (borrowed: destroy the
   link before the loop). When the
   connection cannot even be set up, retries after a backoff. Returns 0, or -1 when zloop
   refuses a timer. */
int bus_link_start(bus_link_t *self, zloop_t *loop);

/* Sends one message on the current connection: envelope (proto_envelope_begin + a header
   encoder) is copied, payload (may be NULL) moved. Never blocks. Returns 0, or -1 when not
   connected, the broker's pipe is full or the envelope failed to encode. */
int bus_link_send(bus_link_t *self, const proto_buffer_t *envelope, zmq_msg_t *payload);

/* Encodes header struct `value` (of message type msg_type) for command and sends it without
   payload; evaluates to bus_link_send's result. */
#define BUS_LINK_SEND_HEADER(link, command, msg_type, value)                                    \
    __extension__({                                                                              \
        proto_buffer_t buffer_;                                                                  \
        proto_envelope_begin(&buffer_, (command));                                               \
        proto_##msg_type##_encode((value), &buffer_);                                            \
        int rc_ = bus_link_send((link), &buffer_, NULL);                                         \
        proto_buffer_release(&buffer_);                                                          \
        rc_;                                                                                     \
    })

/* Sets the in-flight count reported in heartbeats. */
void bus_link_set_inflight(bus_link_t *self, uint32_t inflight);

/* Changes with every new connection; 0 before the first. */
uint64_t bus_link_generation(const bus_link_t *self);

bool bus_link_connected(const bus_link_t *self);

/* This process's instance name (borrowed). */
const char *bus_link_instance(const bus_link_t *self);

#endif

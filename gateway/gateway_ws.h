/*  gateway_ws.h - the client protocol v1 (proto/PROTOCOL.md, "Client protocol v1"): JSON text
    frames on websockets at GET /ws, for customers' widgets and agents' panels.

    Each socket: hello -> session.authenticate (jira) -> welcome; then conversation.start,
    message (published at once on the conversation's topic, then persisted by jira under the
    conversation's order key and acknowledged), join (agents, for conversations of their
    projects). The module subscribes to the topics its sockets need and pushes each event to
    exactly the sockets that joined that topic. Frames over PARLEY_GATEWAY_FRAME_MAX close
    the socket with 1009; a socket whose outbox passes PARLEY_GATEWAY_OUTBOX_MAX frames is a
    slow consumer and is closed; any other bad frame gets an error frame and the socket stays.

    Runs on the lws thread; the callback is dispatched from gateway_http_callback. */
#ifndef GATEWAY_WS_H
#define GATEWAY_WS_H

#include "gateway_bus.h"
#include "gateway_config.h"

#include <libwebsockets.h>

typedef struct gateway_ws_t gateway_ws_t;

gateway_ws_t *gateway_ws_new(const gateway_config_t *config);
void gateway_ws_destroy(gateway_ws_t **self_p);
void gateway_ws_set_bus(gateway_ws_t *self, gateway_bus_t *bus);

/* Handles the websocket callback reasons for wsi; user is its per-session data
   (gateway_ws_session_size bytes). */
int gateway_ws_callback(gateway_ws_t *self, struct lws *wsi, enum lws_callback_reasons reason,
                        void *user, void *in, size_t len);
size_t gateway_ws_session_size(void);

/* Starts the presence heartbeat timer on context (borrowed). */
void gateway_ws_start(gateway_ws_t *self, struct lws_context *context);

/* SIGTERM: refuses new sockets and closes every open one with 1001 ("reconnect elsewhere")
   once its queued frames are out. */
void gateway_ws_drain(gateway_ws_t *self);

/* Open websockets. */
size_t gateway_ws_count(const gateway_ws_t *self);

/* Writes the frames queued since the last flush: straight to the sockets that can take them
   (several frames in one write), through a writable callback for the others. Call it once
   per turn of the event loop, after lws has handled what the turn brought: the frames a turn
   queued for one socket then leave in one write. */
void gateway_ws_flush(gateway_ws_t *self);

/* A finished call this module made, and an event from the broker. Both are taken. */
void gateway_ws_deliver(gateway_ws_t *self, gateway_call_t *call);
void gateway_ws_event(gateway_ws_t *self, gateway_event_t *event);

#endif

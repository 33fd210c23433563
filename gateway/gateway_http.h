/*  gateway_http.h - the gateway's HTTP routes, on libwebsockets' loop:

      GET  /healthz                 200 "ok"
      GET  /atlassian-connect.json  the Connect app descriptor (lifecycle, webhooks, JWT auth)
      POST /connect/installed       Connect lifecycle  -> jira.inbound route "installed"
      POST /connect/uninstalled     Connect lifecycle  -> jira.inbound route "uninstalled"
      POST /jira/webhook/comment    Jira's comment_created webhook -> route "webhook"
      GET|HEAD anything else        a static file (gateway_static.h) from
                                    PARLEY_GATEWAY_STATIC_DIR, or 404; other methods on a
                                    static file's path are 405

    The POST routes are verified by the jira worker, which holds the tenants' secrets: the
    gateway passes the request on (method, path, query, Authorization, body up to
    PARLEY_GATEWAY_HTTP_BODY_MAX, else 413) and answers 204 when the worker accepted it, 401
    when it refused the signature, 400 for a bad request and 503 when it is unavailable.

    gateway_http_callback is the lws protocol callback; the gateway_http_t is the context's
    user pointer. One thread (lws's). */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include "gateway_bus.h"
#include "gateway_config.h"
#include "gateway_ws.h"

#include <libwebsockets.h>

typedef struct {
    uint64_t requests, errors;
} gateway_http_stats_t;

typedef struct gateway_http_t gateway_http_t;

/* config and bus are borrowed and must outlive the object. */
gateway_http_t *gateway_http_new(const gateway_config_t *config, gateway_bus_t *bus);
void gateway_http_destroy(gateway_http_t **self_p);

/* Binds the bus after creation (the bus needs the lws context, which needs this object). */
void gateway_http_set_bus(gateway_http_t *self, gateway_bus_t *bus);

/* Hands websocket connections (GET /ws) to ws (borrowed). */
void gateway_http_set_ws(gateway_http_t *self, gateway_ws_t *ws);

/* Answers the HTTP transaction waiting for call (if its client is still there). */
void gateway_http_deliver(gateway_http_t *self, gateway_call_t *call);

int gateway_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len);

/* Size of the per-session data lws must allocate for gateway_http_callback. */
size_t gateway_http_session_size(void);

/* True once a stop signal arrived. */
bool gateway_http_stopping(const gateway_http_t *self);

const gateway_http_stats_t *gateway_http_stats(const gateway_http_t *self);

#endif

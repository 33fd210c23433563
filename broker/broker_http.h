/*  broker_http.h - the broker's HTTP stats endpoint: GET /stats, /metrics, /healthz.

    Served on a ZeroMQ STREAM socket inside the broker's own loop, so the numbers are read on the
    thread that owns them, without locks. HTTP/1.1 without keep-alive: one request per
    connection, answered, then closed. Bounded: connections (configurable), request head 8 KiB,
    idle connections closed after 5 s. */
#ifndef BROKER_HTTP_H
#define BROKER_HTTP_H

#include <czmq.h>

typedef struct broker_t broker_t;
typedef struct broker_http_t broker_http_t;

/* Binds host:port. Returns the server, or NULL after logging why. broker is borrowed. */
broker_http_t *broker_http_new(broker_t *broker, const char *address);

void broker_http_destroy(broker_http_t **self_p);

/* Registers the socket on loop. Returns 0 or -1. */
int broker_http_attach(broker_http_t *self, zloop_t *loop);

/* Closes connections idle for too long. Call periodically. */
void broker_http_sweep(broker_http_t *self);

#endif

/*  broker_internal.h - the broker's state, shared by the broker_*.c files and nothing else.

    Ownership: the broker owns its peers (zhashx by routing id, destructor frees), its services
    (zhashx by name) and its requests (zhashx by broker id). Every other container (a service's
    queue, its list of available workers, a worker's in-flight list, the deadline heap) only
    references items that one of those three owns. All of it lives on the broker's one thread. */
#ifndef BROKER_INTERNAL_H
#define BROKER_INTERNAL_H

#include "../common/counter_set.h"
#include "../common/deadline_heap.h"
#include "../common/latency_histogram.h"
#include "../proto/proto.h"
#include "../proto/proto_envelope.h"
#include "broker.h"
#include "broker_config.h"

#include <czmq.h>

#define BROKER_ROUTE_MAX 255 /* ZeroMQ routing ids are at most 255 bytes */

typedef struct broker_service_t broker_service_t;
typedef struct broker_peer_t broker_peer_t;
typedef struct broker_request_t broker_request_t;
typedef struct broker_order_key_t broker_order_key_t;

typedef enum { PEER_CLIENT, PEER_WORKER } broker_peer_kind_t;

struct broker_peer_t {
    char key[2 * BROKER_ROUTE_MAX + 1];  /* routing id in hex: our key in broker->peers */
    uint8_t route[BROKER_ROUTE_MAX];     /* routing id as ZeroMQ gave it */
    size_t route_size;
    broker_peer_kind_t kind;
    char instance[PROTO_NAME_MAX + 1];   /* self-reported name, e.g. host-pid */
    char role[PROTO_NAME_MAX + 1];       /* self-reported kind: "gateway", "worker", ... */
    broker_service_t *service;           /* workers: the service served */
    uint32_t capacity;                   /* workers: requests it may hold at once */
    zlistx_t *inflight;                  /* workers: broker_request_t * dispatched to it */
    void *available_handle;              /* workers: handle in service->available, or NULL */
    bool draining;                       /* workers: asked for no new requests */
    int64_t connected_at_ms;
    int64_t expires_at_ms;               /* dead if nothing heard by then */
    uint64_t requests_done;              /* workers: replies and errors returned */
    proto_counter_t counters[PROTO_COUNTERS_MAX]; /* from its latest heartbeat */
    uint32_t counter_count;
};

typedef enum { REQUEST_QUEUED, REQUEST_INFLIGHT, REQUEST_ABANDONED } broker_request_state_t;

struct broker_request_t {
    uint64_t id;                        /* broker-assigned, unique for the process lifetime */
    uint64_t client_id;                 /* the client's own correlation id */
    uint8_t client_route[BROKER_ROUTE_MAX];
    size_t client_route_size;
    char type[PROTO_NAME_MAX + 1];
    broker_service_t *service;
    broker_request_state_t state;
    broker_peer_t *worker;              /* INFLIGHT and ABANDONED: who holds it */
    void *list_handle;                  /* in service->queue or worker->inflight; NULL when held */
    int64_t received_us;                /* zclock_usecs() on arrival, for latency */
    int64_t deadline_ms;
    uint32_t attempts;                  /* dispatches so far */
    zmq_msg_t payload;                  /* kept until answered, for re-dispatch */
    size_t heap_slot;                   /* position in broker->deadlines */
    broker_order_key_t *order_key;      /* requests that must run one at a time, or NULL */
    bool held;                          /* waiting behind its key's current request */
    broker_request_t *held_prev, *held_next; /* its place in order_key's held list */
};

/* Requests of one service that carry the same order key run one at a time, in the order the
   broker received them (see PROTOCOL.md "Ordered requests"). Only the key's current request
   is in the service's queue (or with a worker); the others are held here, oldest first, and
   the next one enters the queue when the current one is gone: the queue holds nothing that
   cannot run, so taking from it never searches. */
struct broker_order_key_t {
    char name[PROTO_NAME_MAX + 1];
    uint32_t requests;          /* requests holding this key (current, held, abandoned) */
    broker_request_t *current;  /* queued or with a worker (or abandoned there), or NULL */
    broker_request_t *held_head, *held_tail;
};

struct broker_service_t {
    char name[PROTO_NAME_MAX + 1];
    zlistx_t *queue;          /* broker_request_t * that may run, oldest first */
    size_t held;              /* requests waiting behind their order key (not in queue) */
    zlistx_t *available;      /* broker_peer_t * workers with spare capacity, round robin */
    zhashx_t *order_keys;     /* name -> broker_order_key_t, owns; freed when unused */
    size_t replicas;          /* workers registered */
    size_t inflight;          /* requests dispatched and unanswered (not abandoned) */
    int64_t last_replica_ms;  /* last moment it had a replica (or broker start) */
    uint64_t requests, replies, errors, timeouts, overloaded, redispatches, no_service;
    latency_histogram_t *latency;
};

/* Counters of the broker itself, shown by /stats and /metrics. */
typedef struct {
    uint64_t rejected[PROTO_REJECT_KINDS]; /* bad messages by reason */
    uint64_t undeliverable;   /* replies whose client had gone */
    uint64_t late_replies;    /* replies for requests already answered (timeout) or unknown */
    uint64_t peers_expired;   /* peers that stopped heartbeating */
    uint64_t requests_refused_draining;
    uint64_t no_service;      /* requests for services never seen */
    uint64_t events_forwarded;
    uint64_t events_rejected;
    uint64_t subscriptions;   /* subscribe messages forwarded upstream */
    uint64_t unsubscriptions;
    uint64_t http_requests;
    uint64_t http_rejected;
    uint64_t log_suppressed;  /* warnings not logged because of the rate limit */
} broker_counters_t;

struct broker_t {
    broker_config_t config;     /* copy */
    zsock_t *router;            /* clients and workers */
    zsock_t *events_in;         /* XSUB */
    zsock_t *events_out;        /* XPUB */
    zhashx_t *peers;            /* key -> broker_peer_t, owns */
    zhashx_t *services;         /* name -> broker_service_t, owns */
    zhashx_t *requests;         /* id -> broker_request_t, owns */
    deadline_heap_t *deadlines; /* requests by deadline */
    uint64_t next_request_id;
    size_t workers, clients;
    int64_t started_ms;         /* monotonic */
    int64_t started_wall_ms;    /* wall clock, for display */
    bool draining;
    int64_t drain_until_ms;
    broker_counters_t counters;
    int64_t log_window_ms;      /* rate limit of warnings about bad input */
    int log_window_count;
    void *http;                 /* broker_http_t *, see broker_http.h */
};

/* broker_dispatch.c */
broker_service_t *broker_service_require(broker_t *self, const char *name);
void broker_service_destroy(broker_service_t **self_p);
void broker_accept_request(broker_t *self, broker_peer_t *client, const proto_request_t *header,
                           zmq_msg_t *payload);
void broker_dispatch(broker_t *self, broker_service_t *service);
void broker_complete(broker_t *self, broker_peer_t *worker, broker_request_t *request,
                     proto_command_t command, const uint8_t *header, size_t header_size,
                     zmq_msg_t *payload);
void broker_requeue_worker(broker_t *self, broker_peer_t *worker);
void broker_expire_requests(broker_t *self, int64_t now_ms);
void broker_request_free(broker_t *self, broker_request_t *request);
int broker_send_error(broker_t *self, const uint8_t *route, size_t route_size, uint64_t id,
                      const char *code, const char *message);
size_t broker_inflight_total(broker_t *self);

/* Requests of service waiting for a worker: in its queue and held behind their keys. */
size_t broker_service_queued(const broker_service_t *service);

/* broker_peers.c */
/* Writes a ZeroMQ routing id (size <= BROKER_ROUTE_MAX) as lower-case hex into out, which
   holds 2 * BROKER_ROUTE_MAX + 1 bytes: the key of peers and HTTP connections. */
void broker_route_key(char *out, const uint8_t *data, size_t size);
broker_peer_t *broker_peer_lookup(broker_t *self, zmq_msg_t *route);
broker_peer_t *broker_peer_add(broker_t *self, zmq_msg_t *route, broker_peer_kind_t kind);
void broker_peer_remove(broker_t *self, broker_peer_t *peer, const char *why);
void broker_peer_free(void **item);
void broker_worker_make_available(broker_t *self, broker_peer_t *worker);
void broker_worker_make_unavailable(broker_peer_t *worker);
int broker_send_to_peer(broker_t *self, broker_peer_t *peer, const proto_buffer_t *envelope);
void broker_heartbeat_peers(broker_t *self, int64_t now_ms);

/* broker_events.c */
int broker_events_forward(broker_t *self);
int broker_events_subscriptions(broker_t *self);

/* Logs a warning about bad input unless more than 20 were logged in the past second. */
void broker_warn_input(broker_t *self, const char *event, const char *fields);

#endif

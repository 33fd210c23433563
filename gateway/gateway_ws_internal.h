/*  gateway_ws_internal.h - what the websocket modules share, and nothing else includes:
    the socket, what is remembered of a call and the gateway_ws_t state (gateway_ws.c: the
    client protocol; gateway_ws_writer.c: queues and writes frames, flow control, slow
    consumers; gateway_ws_presence.c: tells the presence service about the sockets).

    All of it runs on the lws thread. */
#ifndef GATEWAY_WS_INTERNAL_H
#define GATEWAY_WS_INTERNAL_H

#include "../common/json_writer.h"
#include "gateway_outbox.h"
#include "gateway_topics.h"
#include "gateway_ws.h"

#include <jansson.h>

#define GW_TOPICS_MAX 64      /* topics (conversations, projects) one socket follows */
#define GW_WRITES_PER_TURN 32 /* frames one writable callback may send */
#define GW_BATCH_BYTES 32768  /* frames packed into one write */

typedef enum {
    CALL_HELLO,
    CALL_START,
    CALL_MESSAGE,
    CALL_PRESENCE,
    CALL_AVAILABILITY,
    CALL_TRANSCRIPT
} gw_call_kind_t;

/* What the gateway remembers of a call it made: kept in the call's note, so it comes back
   with the answer. An answer for a socket that closed meanwhile finds no socket by that id
   and is dropped. */
typedef struct {
    uint64_t socket;
    gw_call_kind_t kind;
    char id[PROTO_NAME_MAX + 1];    /* the client's id of what it asked for */
    char after[PROTO_NAME_MAX + 1]; /* conversation.start: resume after this comment */
    char tenant[PROTO_NAME_MAX + 1]; /* the socket's (an answer may outlive it) */
} gw_pending_t;

_Static_assert(sizeof(gw_pending_t) <= sizeof(((gateway_call_t *)0)->note),
               "gw_pending_t must fit in a call's note");

/* A conversation being resumed: while its transcript (after comment `after`) is read from
   Jira, live frames of it wait in `held`, and go out after it, minus those the transcript
   already carried. The transcript is read a part (up to 1,000 messages) at a time, and a
   part's messages join the socket's queue as it drains (gw_resume_feed), so that a long one
   neither fills the queue past the slow-consumer cut-off nor waits whole in memory. */
typedef struct {
    char issue[PROTO_NAME_MAX + 1];
    char after[PROTO_NAME_MAX + 1]; /* the part being read starts after this comment */
    char last[PROTO_NAME_MAX + 1];  /* the last comment queued for the client ("": none) */
    zlistx_t *held;    /* frames (JSON text, owned strings) */
    zhashx_t *carried; /* "m:<message id>": the clients' messages the transcript queued */
    json_t *part;      /* the part's messages (owned), NULL while it is being read */
    size_t next;       /* the first of them not queued yet */
    bool more;         /* Jira has more after this part */
} gw_resume_t;

/* One websocket. Kept small: a gateway holds tens of thousands of them, mostly idle, so
   everything that only some sockets need is allocated when they need it. */
typedef struct gw_socket_t_ {
    uint64_t id;
    struct lws *wsi;
    bool authenticated, closing, going_away;
    bool rx_paused;          /* its frames are not read until its outbox has drained */
    bool dirty;              /* in the gateway's dirty list: frames to write at the flush */
    bool waiting;            /* status frames held back, due at waiting_due_ms */
    struct gw_socket_t_ *next_dirty, *prev_dirty; /* its place in the gateway's dirty list */
    double tokens;           /* rate limit: frames the client may still send now */
    int64_t refilled_ms;
    int64_t typed_ms;        /* last typing event published (at most one a second) */
    int64_t waiting_due_ms;  /* its entry in the gateway's `waiting` ring */
    gw_resume_t *resume;      /* owned; NULL unless a resume is under way */
    char kind[16];
    char tenant[PROTO_NAME_MAX + 1], project[PROTO_NAME_MAX + 1];
    char account[PROTO_NAME_MAX + 1];
    char *display_name;      /* owned; NULL when none */
    char (*projects)[PROTO_NAME_MAX + 1]; /* owned: the projects an agent serves */
    uint32_t project_count;
    gateway_follower_t follows; /* the topics this socket follows (owner: the socket) */
    uint8_t *rx;             /* a frame arriving in pieces, owned; NULL otherwise */
    size_t rx_size;
    gateway_outbox_t outbox; /* frames to send */
} gw_socket_t;

/* A socket holding status frames back, and when they are due (zclock_mono ms). */
typedef struct {
    uint64_t socket;
    int64_t due_ms;
} gw_waiting_t;

/* lws's per-session data: the socket (owned by gateway_ws_t's `sockets`; NULL once it is
   freed at LWS_CALLBACK_CLOSED). */
typedef struct {
    gw_socket_t *socket;
} gw_session_t;

struct gateway_ws_t {
    const gateway_config_t *config;
    bool draining;
    gateway_bus_t *bus;
    struct lws_context *context;
    lws_sorted_usec_list_t heartbeat; /* presence heartbeats timer */
    lws_sorted_usec_list_t counters_timer; /* counters to the bus thread, every second */
    uint64_t connections, refused_full, frames_in, frames_out, errors_sent, rate_limited,
        slow_consumers, too_large, rx_pauses;
    uint64_t presence_heartbeat_us; /* how long the last presence heartbeat pass took */
    char instance[PROTO_NAME_MAX + 1];
    uint8_t batch[LWS_PRE + GW_BATCH_BYTES]; /* gw_writable packs frames here */
    json_writer_t writer;  /* the frame being built (its buffer is reused) */
    zhashx_t *sockets;     /* id -> gw_socket_t, owns */
    uint64_t calls_waiting; /* calls handed to the bus and not answered yet */
    gateway_topics_t *topics; /* who follows which topic */
    gw_socket_t *dirty;     /* sockets with frames queued since the last flush (borrowed) */
    /* sockets holding status frames back (gw_send_status), oldest first: a ring of ids
       (not pointers: a socket may close meanwhile) with the time each is due. The status
       timer wakes when the oldest is due and makes every due one dirty, stopping at the
       first that is not: one timer for all of them, not one per socket. */
    gw_waiting_t *waiting;
    size_t waiting_head, waiting_count, waiting_capacity;
    lws_sorted_usec_list_t status_timer;
    uint64_t next_id;
};

/* gateway_ws_writer.c */

/* Queues length bytes of text (copied) for socket as one text frame; it goes out at the next
   gateway_ws_flush. A socket whose queue passes PARLEY_GATEWAY_OUTBOX_MAX is cut off. */
void gw_send_text(gateway_ws_t *self, gw_socket_t *socket, const char *text, size_t length);

/* Queues a status frame (ack, persisted: nothing a person waits for) for socket: it leaves
   with the socket's next other frame, or after PARLEY_GATEWAY_STATUS_DELAY_MS at the latest,
   so that a busy socket gets one write where it would get several. */
void gw_send_status(gateway_ws_t *self, gw_socket_t *socket, const char *text, size_t length);

/* Takes socket out of the list written at the end of the loop's turn (a socket that closes
   before then), in constant time: a close during a turn that fanned out to a big topic must
   not walk that list. */
void gw_forget_dirty(gateway_ws_t *self, gw_socket_t *socket);

/* gateway_ws.c: queues the resume's next transcript messages while the socket's queue holds
   less than a quarter of PARLEY_GATEWAY_OUTBOX_MAX frames; once a part is all queued, asks
   for the next one or ends the resume. The writer calls it as the queue drains (for any
   socket: it does nothing without a resume part to feed). */
void gw_resume_feed(gateway_ws_t *self, gw_socket_t *socket);

/* Queues frame (a JSON object, taken) for socket. */
void gw_send(gateway_ws_t *self, gw_socket_t *socket, json_t *frame);

/* Queues an error frame {code, message, id (may be NULL)} for socket. */
void gw_error(gateway_ws_t *self, gw_socket_t *socket, const char *code, const char *message,
              const char *id);

/* LWS_CALLBACK_SERVER_WRITEABLE for socket. Returns what the callback returns (-1: close). */
int gw_writable(gateway_ws_t *self, struct lws *wsi, gw_socket_t *socket);

/* gateway_ws.c */

/* Hands call to the bus with note (copied into it: the socket's id, 0 for none, and what to
   do with the answer); the answer comes to gateway_ws_deliver. Returns 0, or -1 when it
   could not be queued. */
int gw_call(gateway_ws_t *self, gateway_call_t **call_p, const gw_pending_t *note);

/* gateway_ws_presence.c */

/* Tells presence the socket is open (agents: online in their projects) / closed. */
void gw_presence_open(gateway_ws_t *self, gw_socket_t *socket);
void gw_presence_close(gateway_ws_t *self, gw_socket_t *socket);

/* Asks presence whether anyone is there for the customer socket's project; the answer comes
   back as a CALL_AVAILABILITY call. */
void gw_availability(gateway_ws_t *self, gw_socket_t *socket);

/* The presence heartbeat timer (gateway_ws_start schedules it): every open socket's last seen,
   per tenant, in batches. */
void gw_on_heartbeat_timer(lws_sorted_usec_list_t *sul);

#endif

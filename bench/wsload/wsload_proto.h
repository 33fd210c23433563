/*  wsload_proto.h - the two client protocols parley-wsload speaks, as JSON text frames.

    relay:  join {"type":"join","room":"r<n>"} -> {"type":"joined",...}; later frames are
            relayed verbatim to the room's other member.
    parley: (PROTOCOL.md, "Client protocol v1") a customer sends hello with a token signed by
            the project's secret key -> welcome, then conversation.start -> conversation.started
            (its issue names the room); an agent sends hello with a token signed by the
            tenant's shared secret -> welcome, then join {issue} -> joined. Idle customers stop
            at welcome.

    Both send the same message frame, {"type":"message","id":..,"issue":..,"text":..}, whose text
    is "<send time, CLOCK_MONOTONIC ns> <room> <c|a> " padded with 'x' to text_bytes, so every
    server carries the same bytes and the receiver finds the send time with a key search, no
    JSON parser. The parser here reads only what the load generator needs from a frame: its
    type, a message's text fields, an error's code and message, conversation.started's issue.

    A wsload_proto_t holds the options (borrowed) and the tokens it minted (refreshed before
    they get old). One per worker thread; not thread-safe. */
#ifndef WSLOAD_PROTO_H
#define WSLOAD_PROTO_H

#include "wsload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSLOAD_ISSUE_MAX 64   /* room name or issue key, with its NUL */
#define WSLOAD_FRAME_MAX 2048 /* setup frames (hello with its token, join, start) fit here */

typedef enum { WSLOAD_ROLE_MEMBER, WSLOAD_ROLE_CUSTOMER, WSLOAD_ROLE_AGENT } wsload_role_t;

typedef enum {
    WSLOAD_PEER_NEW = 0,      /* not open yet */
    WSLOAD_PEER_WAIT_WELCOME, /* hello sent */
    WSLOAD_PEER_WAIT_STARTED, /* conversation.start sent */
    WSLOAD_PEER_WAIT_JOINED,  /* join sent */
    WSLOAD_PEER_READY,        /* set up: may send and receive messages */
} wsload_peer_state_t;

/* One socket's side of the protocol. */
typedef struct {
    uint8_t role;    /* wsload_role_t */
    uint8_t state;   /* wsload_peer_state_t */
    bool idle;       /* idle mode: stop at welcome (parley) or joined (relay) */
    uint32_t number; /* fanout: the room; idle: the socket */
    char *issue;     /* fanout: the room's name or issue (WSLOAD_ISSUE_MAX), shared by both
                        members and filled during setup; NULL when idle */
} wsload_peer_t;

typedef enum {
    WSLOAD_FRAME_OTHER = 0,
    WSLOAD_FRAME_MESSAGE,
    WSLOAD_FRAME_ERROR,
    WSLOAD_FRAME_WELCOME,
    WSLOAD_FRAME_JOINED,
    WSLOAD_FRAME_STARTED,
} wsload_frame_kind_t;

/* What a received frame says. Pointers are into the frame (borrowed, not NUL-terminated). */
typedef struct {
    wsload_frame_kind_t kind;
    bool ours;        /* message: its text parsed as one of ours */
    int64_t sent_ns;  /* message, ours: when it was sent */
    uint32_t room;    /* message, ours: the sending room */
    char from;        /* message, ours: 'c' customer or 'a' agent (relay: first, second) */
    const char *code; /* error: its code */
    size_t code_size;
    const char *message; /* error: its message */
    size_t message_size;
    const char *issue; /* conversation.started: its issue */
    size_t issue_size;
} wsload_frame_t;

typedef enum {
    WSLOAD_SETUP_WAIT,  /* not the answer awaited: keep waiting */
    WSLOAD_SETUP_SEND,  /* send the frame written to out */
    WSLOAD_SETUP_READY, /* the peer is set up */
    WSLOAD_SETUP_FAIL,  /* an error frame or a bad answer */
} wsload_setup_t;

typedef struct wsload_proto_t wsload_proto_t;

/* Returns a new protocol helper over options (borrowed), or NULL when memory runs out. */
wsload_proto_t *wsload_proto_new(const wsload_options_t *options);

/* Frees it and sets *self_p to NULL. Accepts NULL. */
void wsload_proto_destroy(wsload_proto_t **self_p);

/* Reads a received frame into *frame. This function can't fail: what it does not recognize is
   WSLOAD_FRAME_OTHER. */
void wsload_frame_parse(const char *data, size_t size, wsload_frame_t *frame);

/* Writes to out (capacity bytes, WSLOAD_FRAME_MAX is enough) the first frame peer sends once
   its socket is open, and moves peer->state. Returns the frame's length, or -1 when it does not
   fit or a token could not be minted. */
long wsload_proto_opening(wsload_proto_t *self, wsload_peer_t *peer, char *out, size_t capacity);

/* Moves peer's setup on with a frame it received. On WSLOAD_SETUP_SEND, out holds the next
   frame to send, *out_size its length. */
wsload_setup_t wsload_proto_setup(wsload_proto_t *self, wsload_peer_t *peer,
                                  const wsload_frame_t *frame, char *out, size_t capacity,
                                  size_t *out_size);

/* Writes a message frame to out: id, issue (JSON-ready: a room name, or an issue as the server
   spelled it), and the text for sent_ns, room and from. Returns its length, or -1 when it does
   not fit capacity. */
long wsload_proto_message(const wsload_proto_t *self, char *out, size_t capacity, const char *id,
                          const char *issue, int64_t sent_ns, uint32_t room, char from);

#endif

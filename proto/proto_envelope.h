/*  proto_envelope.h - the frames of an internal Parley message on a ZeroMQ socket.

    Between a peer (DEALER) and the broker (ROUTER) every message is

        [routing id]  only as seen on the broker's ROUTER socket
        envelope      "PARLEY1" (PROTO_SIGNATURE), one command byte (proto_command_t), then the
                      header: a MessagePack map, the command's struct in proto.h
        payload       REQUEST and REPLY only: opaque bytes (a service message, MessagePack)

    Signature, command and header share one frame because every frame costs the broker a
    ZeroMQ operation on the way in and out; see PROTOCOL.md for the rules. This file receives and checks the frames (never trusting
    them), and sends them. The payload is never decoded here: the broker forwards it untouched. */
#ifndef PROTO_ENVELOPE_H
#define PROTO_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "proto.h"

#define PROTO_SIGNATURE "PARLEY1"
#define PROTO_SIGNATURE_FAMILY "PARLEY" /* another version of ours: answered, not just dropped */
#define PROTO_SIGNATURE_SIZE 7
#define PROTO_PREFIX_SIZE (PROTO_SIGNATURE_SIZE + 1) /* signature + command byte */
#define PROTO_FRAMES_MAX 4             /* route + envelope + payload, and one to spot extras */

typedef enum {
    PROTO_READY = 1,      /* worker -> broker: serve a service */
    PROTO_REQUEST = 2,    /* client -> broker: request; broker -> worker: dispatch */
    PROTO_REPLY = 3,      /* worker -> broker -> client */
    PROTO_ERROR = 4,      /* worker -> broker -> client; broker -> any peer */
    PROTO_HEARTBEAT = 5,  /* both ways */
    PROTO_DISCONNECT = 6, /* both ways */
    PROTO_DRAIN = 7,      /* worker -> broker: send me nothing new */
} proto_command_t;

/* Why a message was rejected; each has a stable name for logs and counters. */
typedef enum {
    PROTO_OK = 0,
    PROTO_BAD_FRAMES,    /* wrong number of frames for the command */
    PROTO_BAD_SIGNATURE, /* not a Parley message at all */
    PROTO_BAD_VERSION,   /* a Parley message of a version we do not speak */
    PROTO_BAD_COMMAND,   /* unknown command byte */
    PROTO_BAD_HEADER,    /* header does not decode as the command's struct */
    PROTO_OVERSIZED,     /* a frame or the whole message is over the configured limit */
    PROTO_REJECT_KINDS
} proto_reject_t;

/* Stable lower-case name of a reject reason ("bad_frames", ...). */
const char *proto_reject_name(proto_reject_t reason);

/* Name of a command ("READY", ...), or "UNKNOWN". */
const char *proto_command_name(int command);

/* One received multipart message. Frames beyond PROTO_FRAMES_MAX are received and discarded
   (counted in total) so the socket is never left mid-message. */
typedef struct {
    zmq_msg_t frames[PROTO_FRAMES_MAX];
    int count;    /* frames kept */
    int total;    /* frames that arrived */
    size_t bytes; /* bytes in all frames that arrived */
} proto_frames_t;

/* Receives one whole multipart message from socket (a libzmq socket handle). flags is 0 or
   ZMQ_DONTWAIT. Returns 0, or -1 with errno set (EAGAIN: nothing waiting) and nothing held. */
int proto_frames_recv(proto_frames_t *self, void *socket, int flags);

/* Releases the frames. Safe to call twice. */
void proto_frames_close(proto_frames_t *self);

/* A checked envelope; pointers borrow from the proto_frames_t it came from. */
typedef struct {
    zmq_msg_t *route;   /* routing id frame when routed, else NULL */
    uint8_t command;
    const uint8_t *header;
    size_t header_size;
    zmq_msg_t *payload; /* REQUEST and REPLY only, else NULL */
} proto_envelope_t;

/* Checks the frames' shape: signature, command, frame count for that command, sizes (no frame
   and not the whole over max_bytes). routed: the first frame is a routing id. Does not decode
   the header (callers decode it into the command's struct). Returns PROTO_OK or a reason. */
proto_reject_t proto_envelope_parse(proto_frames_t *frames, bool routed, size_t max_bytes,
                                    proto_envelope_t *out);

/* Starts an envelope frame in buffer (initialised here): signature and command. Encode the
   header into the same buffer next, e.g. proto_reply_encode(&reply, buffer). */
void proto_envelope_begin(proto_buffer_t *buffer, proto_command_t command);

/* Sends one message. route may be NULL (DEALER side); it is copied, not consumed. envelope
   (from proto_envelope_begin + an encoder) is copied. payload, when not NULL, is moved into the
   message (the caller's zmq_msg_t is left empty, still to be closed). flags: ZMQ_DONTWAIT or 0.
   Returns 0, or -1 with errno set (EAGAIN: peer's queue full; EHOSTUNREACH: unknown route with
   ZMQ_ROUTER_MANDATORY; ENOMEM: the envelope failed to encode); on failure nothing was sent. */
int proto_envelope_send(void *socket, zmq_msg_t *route, const proto_buffer_t *envelope,
                        zmq_msg_t *payload, int flags);

/* Publishes one event (3 frames: topic, proto_event_t header, payload) on a PUB socket, without
   blocking. topic is 1-255 bytes; type and origin are NAMEs. Returns 0, or -1 when the
   arguments are invalid or the event could not be queued. */
int proto_event_publish(void *socket, const char *topic, const char *type, const char *origin,
                        const uint8_t *payload, size_t size);

/* Encodes header struct `value` of message type msg_type after command into a stack buffer
   and sends it without payload; evaluates to proto_envelope_send's result. */
#define PROTO_SEND_HEADER(socket, route, command, msg_type, value, flags)                        \
    __extension__({                                                                              \
        proto_buffer_t buffer_;                                                                  \
        proto_envelope_begin(&buffer_, (command));                                               \
        proto_##msg_type##_encode((value), &buffer_);                                            \
        int rc_ = proto_envelope_send((socket), (route), &buffer_, NULL, (flags));               \
        proto_buffer_release(&buffer_);                                                          \
        rc_;                                                                                     \
    })

#endif

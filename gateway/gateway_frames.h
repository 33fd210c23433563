/*  gateway_frames.h - the client protocol's frames for events from the bus (proto/PROTOCOL.md,
    "Client protocol v1"): what a widget or agent panel receives when a message, typing or read
    signal, availability change, new conversation or persistence event concerns it.

    Pure functions: each writes one frame's JSON text into a json_writer_t (its buffer is
    reused from frame to frame, so a frame costs no allocation) and holds no state. */
#ifndef GATEWAY_FRAMES_H
#define GATEWAY_FRAMES_H

#include "../common/json_writer.h"
#include "../proto/proto.h"

/* What a frame is about, for choosing the sockets that get it. */
typedef struct {
    char issue[PROTO_NAME_MAX + 1];  /* the conversation, or "" */
    char typist[PROTO_NAME_MAX + 1]; /* a typing frame: the account typing; else "" */
} gateway_frame_about_t;

/* The `message` frame of a conversation.message event. Returns 0, or -1 (text not UTF-8, or
   out of memory: no frame). */
int gateway_frame_message(json_writer_t *out, const proto_conversation_message_event_t *m);

/* The `typing` or `read` frame of a conversation.typing or conversation.read event (type).
   Returns 0 or -1 (out of memory). */
int gateway_frame_signal(json_writer_t *out, const char *type,
                         const proto_conversation_signal_t *g);

/* The `persisted` frame of a conversation.persisted event or reply. Returns 0 or -1 (out of
   memory). */
int gateway_frame_persisted(json_writer_t *out, const proto_conversation_persisted_t *p);

/* The frame of an event of type with payload (size bytes, borrowed), and what it is about.
   Returns 0, or -1 when clients do not get such events or the payload does not decode. */
int gateway_frame_event(json_writer_t *out, const char *type, const uint8_t *payload,
                        size_t size, gateway_frame_about_t *about);

#endif

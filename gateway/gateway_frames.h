/*  gateway_frames.h - the client protocol's frames for events from the bus (proto/PROTOCOL.md,
    "Client protocol v1"): what a widget or agent panel receives when a message, typing or read
    signal, availability change, new conversation or persistence event concerns it.

    Pure functions: they decode and build, and hold no state. A returned json_t * is the
    caller's (json_decref). */
#ifndef GATEWAY_FRAMES_H
#define GATEWAY_FRAMES_H

#include "../proto/proto.h"

#include <jansson.h>

/* The `message` frame of a conversation.message event. Returns NULL when out of memory. */
json_t *gateway_frame_of_message(const proto_conversation_message_event_t *m);

/* The `typing` or `read` frame of a conversation.typing or conversation.read event (type).
   Returns NULL when out of memory. */
json_t *gateway_frame_of_signal(const char *type, const proto_conversation_signal_t *g);

/* The frame of an event of type with payload (size bytes, borrowed), or NULL when clients do
   not get such events or the payload does not decode. */
json_t *gateway_frame_of_event(const char *type, const uint8_t *payload, size_t size);

#endif

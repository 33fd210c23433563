/*  gateway_outbox.h - one websocket's queue of text frames waiting to be written.

    Each frame is one allocation holding lws's LWS_PRE header room and the text, linked in
    arrival order; an empty outbox holds no memory at all (it is a few words inside the
    socket), which matters with tens of thousands of idle sockets. The caller decides what a
    too-long queue means (gateway_ws cuts such a slow consumer off).

    Not thread-safe: used on the lws thread only. */
#ifndef GATEWAY_OUTBOX_H
#define GATEWAY_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

typedef struct gateway_frame_t gateway_frame_t;

typedef struct {
    gateway_frame_t *head, *tail;
    size_t count;
} gateway_outbox_t;

/* Appends a copy of length bytes of text. Returns 0, or -1 when out of memory (the outbox is
   then unaltered). */
int gateway_outbox_push(gateway_outbox_t *self, const char *text, size_t length);

/* The oldest frame's text, with LWS_PRE writable bytes before it (as lws_write wants), and
   its length; NULL when the outbox is empty. Borrowed until gateway_outbox_pop. */
uint8_t *gateway_outbox_peek(gateway_outbox_t *self, size_t *length);

/* Drops the oldest frame. Does nothing on an empty outbox. */
void gateway_outbox_pop(gateway_outbox_t *self);

/* Moves the oldest frames, as whole websocket text frames from a server (header, then the
   text; unmasked), into out while they fit in capacity bytes, so that several go out in one
   write. Returns the bytes written to out (0 when the oldest frame alone does not fit, or the
   outbox is empty). This function can't fail. */
size_t gateway_outbox_pack(gateway_outbox_t *self, uint8_t *out, size_t capacity);

/* Drops every frame. This function can't fail. */
void gateway_outbox_clear(gateway_outbox_t *self);

#endif

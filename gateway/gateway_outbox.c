/*  gateway_outbox.c - see gateway_outbox.h. */
#include "gateway_outbox.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

struct gateway_frame_t {
    gateway_frame_t *next;
    size_t length;
    uint8_t bytes[]; /* LWS_PRE bytes for lws's header, then the text */
};

int gateway_outbox_push(gateway_outbox_t *self, const char *text, size_t length)
{
    gateway_frame_t *frame = malloc(sizeof *frame + LWS_PRE + length);
    if (!frame)
        return -1;
    frame->next = NULL;
    frame->length = length;
    memcpy(frame->bytes + LWS_PRE, text, length);
    if (self->tail)
        self->tail->next = frame;
    else
        self->head = frame;
    self->tail = frame;
    self->count++;
    return 0;
}

uint8_t *gateway_outbox_peek(gateway_outbox_t *self, size_t *length)
{
    if (!self->head)
        return NULL;
    *length = self->head->length;
    return self->head->bytes + LWS_PRE;
}

void gateway_outbox_pop(gateway_outbox_t *self)
{
    gateway_frame_t *frame = self->head;
    if (!frame)
        return;
    self->head = frame->next;
    if (!self->head)
        self->tail = NULL;
    self->count--;
    free(frame);
}

void gateway_outbox_clear(gateway_outbox_t *self)
{
    while (self->head)
        gateway_outbox_pop(self);
}

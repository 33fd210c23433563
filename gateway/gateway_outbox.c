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

size_t gateway_outbox_pack(gateway_outbox_t *self, uint8_t *out, size_t capacity)
{
    size_t used = 0;
    while (self->head) {
        size_t length = self->head->length;
        size_t header = length < 126 ? 2 : length < 65536 ? 4 : 10;
        if (used + header + length > capacity)
            break;
        uint8_t *at = out + used;
        at[0] = 0x81; /* FIN, text */
        if (length < 126)
            at[1] = (uint8_t)length;
        else if (length < 65536) {
            at[1] = 126;
            at[2] = (uint8_t)(length >> 8);
            at[3] = (uint8_t)length;
        } else {
            at[1] = 127;
            for (int i = 0; i < 8; i++)
                at[2 + i] = (uint8_t)((uint64_t)length >> (56 - 8 * i));
        }
        memcpy(at + header, self->head->bytes + LWS_PRE, length);
        used += header + length;
        gateway_outbox_pop(self);
    }
    return used;
}

void gateway_outbox_clear(gateway_outbox_t *self)
{
    while (self->head)
        gateway_outbox_pop(self);
}

/*  gateway_mailbox.h - a queue of (kind, pointer) items from one thread to another.

    The gateway's two threads (lws and bus) hand calls and events to each other through two
    of these. A put never blocks and never fails for lack of room (only for lack of memory):
    two threads that block on each other's full queue deadlock, which a bounded pipe in both
    directions did under load. The producer wakes the consumer only when the mailbox goes
    from empty to not empty; the consumer then takes until it is empty again, so no wake-up
    is lost and there is at most one per batch. Whoever bounds the traffic (the bus client's
    pending limit, the gateway's event limit) does so before putting.

    Thread-safe: one producer and one consumer (or more of each) at a time. */
#ifndef GATEWAY_MAILBOX_H
#define GATEWAY_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gateway_mailbox_t gateway_mailbox_t;

/* Returns a new empty mailbox, or NULL when out of memory. */
gateway_mailbox_t *gateway_mailbox_new(void);

/* Frees the mailbox; items still in it are passed to free_item (may be NULL: then they are
   leaked, which only a caller that knows there are none may choose). */
void gateway_mailbox_destroy(gateway_mailbox_t **self_p, void (*free_item)(int kind, void *item));

/* Appends (kind, item); the mailbox holds item until it is taken. Returns 1 when the mailbox
   was empty (wake the consumer), 0 when it was not, -1 when out of memory (nothing queued). */
int gateway_mailbox_put(gateway_mailbox_t *self, int kind, void *item);

/* Takes the oldest item. Returns false when the mailbox is empty. */
bool gateway_mailbox_take(gateway_mailbox_t *self, int *kind, void **item);

/* Items queued now. */
size_t gateway_mailbox_size(gateway_mailbox_t *self);

#endif

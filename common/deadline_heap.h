/*  deadline_heap.h - a binary min-heap of items keyed by deadline, with O(log n) removal.

    The broker and the client keep every request in one of these so that expiring requests is
    O(log n) per request instead of a scan. Each item owns a size_t slot that the heap keeps
    equal to the item's position (DEADLINE_HEAP_NONE when not in the heap), so the owner can
    remove it early (a reply arrived). The heap borrows items; it never frees them.
    Single-threaded. */
#ifndef DEADLINE_HEAP_H
#define DEADLINE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define DEADLINE_HEAP_NONE ((size_t)-1)

typedef struct deadline_heap_t deadline_heap_t;

/* Returns a new empty heap, or NULL when memory runs out. */
deadline_heap_t *deadline_heap_new(void);

/* Frees the heap (not its items) and sets *self_p to NULL. Accepts NULL. */
void deadline_heap_destroy(deadline_heap_t **self_p);

/* Adds item with its deadline; *slot must be DEADLINE_HEAP_NONE. Returns 0, or -1 when memory
   runs out (the heap is unchanged). */
int deadline_heap_push(deadline_heap_t *self, int64_t deadline_ms, void *item, size_t *slot);

/* Removes the item whose slot this is, if it is in the heap; sets *slot to DEADLINE_HEAP_NONE.
   This function can't fail. */
void deadline_heap_remove(deadline_heap_t *self, size_t *slot);

/* Removes and returns the item with the earliest deadline if that deadline is <= now_ms, else
   returns NULL. */
void *deadline_heap_pop_expired(deadline_heap_t *self, int64_t now_ms);

/* Earliest deadline, or INT64_MAX when empty. */
int64_t deadline_heap_next_ms(const deadline_heap_t *self);

size_t deadline_heap_size(const deadline_heap_t *self);

#endif

/*  deadline_heap.c - array-backed binary min-heap; see deadline_heap.h. */
#include "deadline_heap.h"

#include <stdlib.h>

typedef struct {
    int64_t deadline_ms;
    void *item;
    size_t *slot; /* the item's own record of its position */
} s_entry_t;

struct deadline_heap_t {
    s_entry_t *entries;
    size_t size;
    size_t allocated;
};

deadline_heap_t *deadline_heap_new(void)
{
    return calloc(1, sizeof(deadline_heap_t));
}

void deadline_heap_destroy(deadline_heap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    deadline_heap_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        *self->entries[i].slot = DEADLINE_HEAP_NONE;
    free(self->entries);
    free(self);
    *self_p = NULL;
}

static void s_place(deadline_heap_t *self, size_t at, s_entry_t entry)
{
    self->entries[at] = entry;
    *entry.slot = at;
}

static void s_sift_up(deadline_heap_t *self, size_t at)
{
    s_entry_t entry = self->entries[at];
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (self->entries[parent].deadline_ms <= entry.deadline_ms)
            break;
        s_place(self, at, self->entries[parent]);
        at = parent;
    }
    s_place(self, at, entry);
}

static void s_sift_down(deadline_heap_t *self, size_t at)
{
    s_entry_t entry = self->entries[at];
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size &&
            self->entries[child + 1].deadline_ms < self->entries[child].deadline_ms)
            child++;
        if (entry.deadline_ms <= self->entries[child].deadline_ms)
            break;
        s_place(self, at, self->entries[child]);
        at = child;
    }
    s_place(self, at, entry);
}

int deadline_heap_push(deadline_heap_t *self, int64_t deadline_ms, void *item, size_t *slot)
{
    if (self->size == self->allocated) {
        size_t allocated = self->allocated ? self->allocated * 2 : 64;
        s_entry_t *entries = realloc(self->entries, allocated * sizeof *entries);
        if (!entries)
            return -1;
        self->entries = entries;
        self->allocated = allocated;
    }
    s_entry_t entry = {deadline_ms, item, slot};
    s_place(self, self->size++, entry);
    s_sift_up(self, self->size - 1);
    return 0;
}

void deadline_heap_remove(deadline_heap_t *self, size_t *slot)
{
    size_t at = *slot;
    if (at == DEADLINE_HEAP_NONE || at >= self->size || self->entries[at].slot != slot)
        return;
    *slot = DEADLINE_HEAP_NONE;
    self->size--;
    if (at == self->size)
        return;
    s_place(self, at, self->entries[self->size]);
    if (at > 0 && self->entries[(at - 1) / 2].deadline_ms > self->entries[at].deadline_ms)
        s_sift_up(self, at);
    else
        s_sift_down(self, at);
}

void *deadline_heap_pop_expired(deadline_heap_t *self, int64_t now_ms)
{
    if (self->size == 0 || self->entries[0].deadline_ms > now_ms)
        return NULL;
    void *item = self->entries[0].item;
    deadline_heap_remove(self, self->entries[0].slot);
    return item;
}

int64_t deadline_heap_next_ms(const deadline_heap_t *self)
{
    return self->size ? self->entries[0].deadline_ms : INT64_MAX;
}

size_t deadline_heap_size(const deadline_heap_t *self)
{
    return self->size;
}

/*  counter_set.h - a small set of named counters that a process carries in its heartbeats.

    Workers and gateways count what they do (requests handled, errors by kind, rows written...)
    in one of these; the runtime copies them into every heartbeat so that the broker's /stats
    shows the whole cluster. At most COUNTER_SET_MAX names of up to 63 printable characters.
    Look a counter up once with counter_set_require() and keep the pointer: it stays valid for
    the set's lifetime. Single-threaded. */
#ifndef COUNTER_SET_H
#define COUNTER_SET_H

#include <stddef.h>
#include <stdint.h>

#define COUNTER_SET_MAX 64
#define COUNTER_NAME_MAX 63

typedef struct {
    char name[COUNTER_NAME_MAX + 1];
    uint64_t value;
} counter_t;

typedef struct {
    counter_t counters[COUNTER_SET_MAX];
    size_t count;
    uint64_t overflow; /* increments lost because the set was full (counted, never silent) */
} counter_set_t;

/* Returns the counter with this name, creating it at zero. When the set is full or the name
   invalid, returns a pointer to the set's overflow counter so that callers never need a NULL
   check. */
uint64_t *counter_set_require(counter_set_t *self, const char *name);

#endif

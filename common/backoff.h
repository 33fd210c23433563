/*  backoff.h - exponential backoff with jitter, for reconnects and retries.

    Each delay is drawn uniformly from [current/2, current] ("equal jitter"), then current doubles
    up to max_ms; reset() after a success starts again from min_ms. Plain data, no allocation. */
#ifndef BACKOFF_H
#define BACKOFF_H

#include <stdint.h>

typedef struct {
    int64_t min_ms;     /* first delay's upper bound */
    int64_t max_ms;     /* cap on the delay's upper bound */
    int64_t current_ms; /* upper bound of the next delay */
} backoff_t;

/* Initialises with the given bounds (min_ms >= 1, max_ms >= min_ms). This function can't fail. */
void backoff_init(backoff_t *self, int64_t min_ms, int64_t max_ms);

/* Returns the next delay in milliseconds and grows the bound. This function can't fail. */
int64_t backoff_next_ms(backoff_t *self);

/* Starts over from min_ms. */
void backoff_reset(backoff_t *self);

#endif

/*  backoff.c - equal-jitter exponential backoff; see backoff.h. Uses random(), which each
    process seeds once in its main. */
#include "backoff.h"

#include <stdlib.h>

void backoff_init(backoff_t *self, int64_t min_ms, int64_t max_ms)
{
    self->min_ms = min_ms < 1 ? 1 : min_ms;
    self->max_ms = max_ms < self->min_ms ? self->min_ms : max_ms;
    self->current_ms = self->min_ms;
}

int64_t backoff_next_ms(backoff_t *self)
{
    int64_t half = self->current_ms / 2;
    int64_t delay = half + (int64_t)(random() % (self->current_ms - half + 1));
    self->current_ms *= 2;
    if (self->current_ms > self->max_ms)
        self->current_ms = self->max_ms;
    return delay;
}

void backoff_reset(backoff_t *self)
{
    self->current_ms = self->min_ms;
}

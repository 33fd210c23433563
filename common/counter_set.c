/*  counter_set.c - see counter_set.h. */
#include "counter_set.h"

#include <string.h>

uint64_t *counter_set_require(counter_set_t *self, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->counters[i].name, name) == 0)
            return &self->counters[i].value;
    if (self->count == COUNTER_SET_MAX || len == 0 || len > COUNTER_NAME_MAX)
        return &self->overflow;
    counter_t *counter = &self->counters[self->count++];
    memcpy(counter->name, name, len + 1);
    counter->value = 0;
    return &counter->value;
}

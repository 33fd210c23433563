/*  presence_flusher.h - the write-behind flusher: a zactor that moves presence state from
    Redis to DynamoDB in coalesced BatchWriteItem batches (protocol in common/DATA-MODEL.md).

    Runs in its own thread with its own Redis and DynamoDB clients, so slow DynamoDB calls never
    stall the worker's request loop. Flushes at wall-clock multiples of flush_ms, so that every
    replica flushes at the same moments and the dirty set is split between them. After each
    flush it sends its figures up the pipe as one message:
        "STATS" rows_written batches errors reclaimed duration_ms dirty_left
    On $TERM it flushes once more, then exits. */
#ifndef PRESENCE_FLUSHER_H
#define PRESENCE_FLUSHER_H

#include "presence_config.h"

#include <czmq.h>

typedef struct {
    const presence_config_t *config; /* borrowed: must outlive the actor */
    const char *instance;            /* this replica's name (borrowed) */
} presence_flusher_args_t;

/* The actor function, for zactor_new(presence_flusher_actor, &args). */
void presence_flusher_actor(zsock_t *pipe, void *args);

#endif

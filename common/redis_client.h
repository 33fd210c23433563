/*  redis_client.h - a Redis connection over hiredis, with timeouts, reconnect and pipelining.

    Configured by a URL, redis://[:password@]host[:port][/db]. Connects lazily; after an I/O or
    protocol error the connection is dropped and the next command connects again (a command
    that fails on a broken connection is retried once on a fresh one, so a Redis restart costs
    at most one error). Replies from the server are not trusted: hiredis parses them, and we
    refuse arrays declaring more than REDIS_CLIENT_MAX_ELEMENTS elements before anything is
    allocated for them.

    Blocking, bounded by timeout_ms: it limits each command's whole reply (each reply of a
    pipeline), however slowly a server sends it. After a failure (no connection, no reply in
    time) commands fail at once, without I/O, for a backoff of 100 ms doubling up to
    backoff_max_ms (2 s), so that a Redis that hangs costs its callers one timeout per backoff,
    not one per command. Not
    thread-safe: one redis_client_t per thread. */
#ifndef REDIS_CLIENT_H
#define REDIS_CLIENT_H

#include "config.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_CLIENT_MAX_ELEMENTS (1 << 20)

typedef struct {
    char url[256];
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    int64_t backoff_max_ms; /* 0: no backoff */
} redis_client_config_t;

extern const config_option_t redis_client_config_options[];
extern const size_t redis_client_config_option_count;

typedef struct redis_client_t redis_client_t;

/* Returns a client for config (copied), not yet connected, or NULL when the URL is invalid
   (why is written to error, error_size bytes) or memory runs out. */
redis_client_t *redis_client_new(const redis_client_config_t *config, char *error,
                                 size_t error_size);

/* Closes the connection and frees the client; sets *self_p to NULL. Accepts NULL. */
void redis_client_destroy(redis_client_t **self_p);

/* Runs one command given as argc arguments (binary-safe, argv_len may be NULL for C
   strings). Returns the reply (owned: freeReplyObject), which may be of type
   REDIS_REPLY_ERROR; or NULL when Redis could not be reached or answered something that is
   not RESP, with the reason in redis_client_error(). */
redisReply *redis_client_command(redis_client_t *self, int argc, const char **argv,
                                 const size_t *argv_len);

/* Pipelines count commands (argcs[i] arguments at argvs[i], lens[i] may be NULL) in one round
   trip and stores their replies in replies[] (owned by the caller). Returns 0, or -1 when the
   connection failed part way (every replies[i] is then NULL). Not retried: a pipeline may
   hold non-idempotent commands. */
int redis_client_pipeline(redis_client_t *self, int count, const int *argcs,
                          const char *const *const *argvs, const size_t *const *lens,
                          redisReply **replies);

/* The last failure's reason (borrowed, valid until the next call). */
const char *redis_client_error(const redis_client_t *self);

/* True while a connection is open. */
int redis_client_connected(const redis_client_t *self);

#endif

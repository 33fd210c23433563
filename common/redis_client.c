/*  redis_client.c - see redis_client.h.

    Owns one redisContext (NULL while disconnected). */
#include "redis_client.h"
#include "backoff.h"
#include "plog.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* After Redis fails (no connection, no reply in time), commands fail at once for a jittered
   delay from 100 ms (or the cap, when lower) doubling up to PARLEY_REDIS_BACKOFF_MAX_MS, then
   one tries again. */
#define S_RETRY_MIN_MS 100

#define T redis_client_config_t
const config_option_t redis_client_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_REDIS_URL", T, url, "redis://127.0.0.1:6379/0",
                      "Redis URL: redis://[:password@]host[:port][/db]"),
    CONFIG_INT_OPTION("PARLEY_REDIS_TIMEOUT_MS", T, timeout_ms, "1000", 10, 60000,
                      "time limit of one Redis command (ms)"),
    CONFIG_INT_OPTION("PARLEY_REDIS_CONNECT_TIMEOUT_MS", T, connect_timeout_ms, "1000", 10,
                      60000, "time limit to connect to Redis (ms)"),
    CONFIG_INT_OPTION("PARLEY_REDIS_BACKOFF_MAX_MS", T, backoff_max_ms, "2000", 0, 60000,
                      "after Redis fails, commands fail at once for up to this long before one "
                      "tries again (ms; 0: every command tries)"),
};
#undef T
const size_t redis_client_config_option_count =
    sizeof redis_client_config_options / sizeof redis_client_config_options[0];

/* How far the socket timeout may exceed what is left of a command's time limit before it is
   lowered (each lowering is a system call). */
#define S_TIMEOUT_SLACK_MS 10

struct redis_client_t {
    redis_client_config_t config;
    char host[128];
    int port;
    int db;
    char password[128];
    redisContext *context;
    char error[320];
    backoff_t backoff;     /* after a failure, commands fail at once until retry_at_ms */
    int64_t retry_at_ms;   /* 0: no failure since the last success */
};

/* hiredis's own reply constructors, wrapped so that a hostile array length fails instead of
   allocating gigabytes. Filled once from a reader's defaults. */
static redisReplyObjectFunctions *s_defaults;
static redisReplyObjectFunctions s_guarded;

static void *s_create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > REDIS_CLIENT_MAX_ELEMENTS)
        return NULL; /* hiredis reports it as an error; the connection is then dropped */
    return s_defaults->createArray(task, elements);
}

static int s_guard_replies(redisContext *context)
{
    if (!s_defaults) {
        s_defaults = context->reader->fn;
        s_guarded = *s_defaults;
        s_guarded.createArray = s_create_array;
    }
    context->reader->fn = &s_guarded;
    return 0;
}

/* Parses redis://[:password@]host[:port][/db]. Returns 0 or -1 with why in error. */
static int s_parse_url(redis_client_t *self, const char *url, char *error, size_t error_size)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0) {
        snprintf(error, error_size, "Redis URL must start with redis://");
        return -1;
    }
    p += 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *secret = colon ? colon + 1 : p;
        size_t len = (size_t)(at - secret);
        if (len >= sizeof self->password) {
            snprintf(error, error_size, "Redis password too long");
            return -1;
        }
        memcpy(self->password, secret, len);
        self->password[len] = '\0';
        p = at + 1;
    }
    size_t host_len = strcspn(p, ":/");
    if (host_len == 0 || host_len >= sizeof self->host) {
        snprintf(error, error_size, "Redis URL has no valid host");
        return -1;
    }
    memcpy(self->host, p, host_len);
    self->host[host_len] = '\0';
    p += host_len;
    self->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) {
            snprintf(error, error_size, "Redis URL has an invalid port");
            return -1;
        }
        self->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 1000) {
            snprintf(error, error_size, "Redis URL has an invalid database number");
            return -1;
        }
        self->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        snprintf(error, error_size, "Redis URL has trailing characters");
        return -1;
    }
    return 0;
}

redis_client_t *redis_client_new(const redis_client_config_t *config, char *error,
                                 size_t error_size)
{
    redis_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    self->config = *config;
    if (config->backoff_max_ms > 0)
        backoff_init(&self->backoff,
                     S_RETRY_MIN_MS < config->backoff_max_ms ? S_RETRY_MIN_MS
                                                             : config->backoff_max_ms,
                     config->backoff_max_ms);
    if (s_parse_url(self, config->url, error, error_size) != 0) {
        free(self);
        return NULL;
    }
    return self;
}

static void s_disconnect(redis_client_t *self)
{
    if (self->context) {
        redisFree(self->context);
        self->context = NULL;
    }
}

void redis_client_destroy(redis_client_t **self_p)
{
    redis_client_t *self = *self_p;
    if (!self)
        return;
    s_disconnect(self);
    free(self);
    *self_p = NULL;
}

const char *redis_client_error(const redis_client_t *self)
{
    return self->error;
}

int redis_client_connected(const redis_client_t *self)
{
    return self->context != NULL;
}

static struct timeval s_timeval(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Before each read or write for one reply: fails once the reply's time limit (deadline) has
   passed, and lowers the socket timeout (now *socket_ms) when what is left of the limit is
   noticeably less. Returns 0, or -1 with the connection marked failed. */
static int s_time_left(redis_client_t *self, int64_t deadline, int64_t *socket_ms)
{
    int64_t left = deadline - s_now_ms();
    if (left <= 0) {
        self->context->err = REDIS_ERR_IO;
        snprintf(self->context->errstr, sizeof self->context->errstr, "command timed out");
        return -1;
    }
    if (left + S_TIMEOUT_SLACK_MS < *socket_ms) {
        redisSetTimeout(self->context, s_timeval(left));
        *socket_ms = left;
    }
    return 0;
}

/* Sends what is buffered and reads one reply, within timeout_ms in all. hiredis's own socket
   timeout (timeout_ms, set on connect) bounds each read or write, not the reply: a server
   trickling a byte at a time would hold a plain redisGetReply forever. A reply that arrives
   in time costs no extra system call. Returns REDIS_OK with *reply set (owned), or REDIS_ERR
   with the reason in the context's errstr (the connection must then be dropped). */
static int s_get_reply(redis_client_t *self, void **reply)
{
    redisContext *context = self->context;
    int64_t deadline = s_now_ms() + self->config.timeout_ms;
    int64_t socket_ms = self->config.timeout_ms;
    *reply = NULL;
    if (redisGetReplyFromReader(context, reply) != REDIS_OK)
        return REDIS_ERR;
    for (int done = 0; !*reply && !done;)
        if (s_time_left(self, deadline, &socket_ms) != 0 ||
            redisBufferWrite(context, &done) != REDIS_OK)
            return REDIS_ERR;
    while (!*reply)
        if (s_time_left(self, deadline, &socket_ms) != 0 || redisBufferRead(context) != REDIS_OK ||
            redisGetReplyFromReader(context, reply) != REDIS_OK)
            return REDIS_ERR;
    if (socket_ms != self->config.timeout_ms)
        redisSetTimeout(context, s_timeval(self->config.timeout_ms));
    return REDIS_OK;
}

/* Runs one command on the open connection. Returns its reply (owned), or NULL when the
   connection failed (reason in the context's errstr). */
static redisReply *s_command(redis_client_t *self, int argc, const char **argv,
                             const size_t *argv_len)
{
    void *reply = NULL;
    if (redisAppendCommandArgv(self->context, argc, argv, argv_len) != REDIS_OK ||
        s_get_reply(self, &reply) != REDIS_OK) {
        if (reply)
            freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Runs a setup command on a fresh connection; returns 0 when it answered OK. */
static int s_setup(redis_client_t *self, int argc, const char **argv)
{
    redisReply *reply = s_command(self, argc, argv, NULL);
    int ok = reply && reply->type == REDIS_REPLY_STATUS;
    if (!ok)
        snprintf(self->error, sizeof self->error, "%s failed: %s", argv[0],
                 reply && reply->type == REDIS_REPLY_ERROR ? reply->str : self->context->errstr);
    if (reply)
        freeReplyObject(reply);
    return ok ? 0 : -1;
}

static int s_connect(redis_client_t *self)
{
    if (self->context)
        return 0;
    redisContext *context = redisConnectWithTimeout(
        self->host, self->port, s_timeval(self->config.connect_timeout_ms));
    if (!context || context->err) {
        snprintf(self->error, sizeof self->error, "connect %s:%d: %s", self->host, self->port,
                 context ? context->errstr : "out of memory");
        if (context)
            redisFree(context);
        return -1;
    }
    redisSetTimeout(context, s_timeval(self->config.timeout_ms));
    redisEnableKeepAlive(context);
    s_guard_replies(context);
    self->context = context;
    char db[16];
    snprintf(db, sizeof db, "%d", self->db);
    const char *auth[] = {"AUTH", self->password};
    const char *select[] = {"SELECT", db};
    if ((*self->password && s_setup(self, 2, auth) != 0) ||
        (self->db && s_setup(self, 2, select) != 0)) {
        s_disconnect(self);
        return -1;
    }
    return 0;
}

/* After a failed read or write: remember why and drop the connection. */
static void s_failed(redis_client_t *self)
{
    snprintf(self->error, sizeof self->error, "redis %s:%d: %s", self->host, self->port,
             self->context && self->context->errstr[0] ? self->context->errstr : "no reply");
    s_disconnect(self);
}

/* Redis failed: no command tries again before the backoff's next delay is over. */
static void s_back_off(redis_client_t *self)
{
    if (self->config.backoff_max_ms > 0)
        self->retry_at_ms = s_now_ms() + backoff_next_ms(&self->backoff);
}

/* Redis answered: the next failure starts the backoff over. */
static void s_answered(redis_client_t *self)
{
    if (self->retry_at_ms) {
        self->retry_at_ms = 0;
        backoff_reset(&self->backoff);
    }
}

/* True (with the reason in self->error) while backing off after a failure: a Redis that
   hangs would otherwise cost every command its timeout twice over, and hold the caller's
   event loop (and everyone it serves) that long each time. */
static bool s_backing_off(redis_client_t *self)
{
    int64_t left = self->retry_at_ms - s_now_ms();
    if (!self->retry_at_ms || left <= 0)
        return false;
    if (strncmp(self->error, "backing off", 11) != 0) { /* keep the failure's own reason */
        char last[sizeof self->error];
        memcpy(last, self->error, sizeof last);
        snprintf(self->error, sizeof self->error, "backing off after a failure: %.250s", last);
    }
    return true;
}

redisReply *redis_client_command(redis_client_t *self, int argc, const char **argv,
                                 const size_t *argv_len)
{
    if (s_backing_off(self))
        return NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int was_connected = self->context != NULL;
        if (s_connect(self) != 0)
            break;
        redisReply *reply = s_command(self, argc, argv, argv_len);
        if (reply) {
            s_answered(self);
            return reply;
        }
        s_failed(self);
        if (!was_connected)
            break; /* a fresh connection failed: no point trying again at once */
    }
    s_back_off(self);
    return NULL;
}

int redis_client_pipeline(redis_client_t *self, int count, const int *argcs,
                          const char *const *const *argvs, const size_t *const *lens,
                          redisReply **replies)
{
    for (int i = 0; i < count; i++)
        replies[i] = NULL;
    if (s_backing_off(self))
        return -1;
    if (s_connect(self) != 0) {
        s_back_off(self);
        return -1;
    }
    for (int i = 0; i < count; i++)
        if (redisAppendCommandArgv(self->context, argcs[i], (const char **)argvs[i],
                                   lens ? lens[i] : NULL) != REDIS_OK) {
            s_failed(self);
            s_back_off(self);
            return -1;
        }
    for (int i = 0; i < count; i++) {
        void *reply = NULL;
        if (s_get_reply(self, &reply) != REDIS_OK) {
            for (int j = 0; j < i; j++) {
                freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            s_failed(self);
            s_back_off(self);
            return -1;
        }
        replies[i] = reply;
    }
    s_answered(self);
    return 0;
}

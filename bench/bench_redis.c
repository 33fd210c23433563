/*  bench_redis.c - the Redis job-queue baseline, over hiredis: both ends of the queue.

      redis-client  keeps options->inflight jobs in flight: LPUSHes them onto the jobs list
                    (--jobs-key) and BRPOPs the answers from its own reply list
                    (S_REPLY_PREFIX + pid).
      redis-worker  BRPOPs jobs from the jobs list and LPUSHes each job's payload onto the reply
                    list the job names.

    A job is [1 byte: reply list name length][reply list name][payload]; the payload is the echo
    request bytes with the client's send time in its first 8 bytes. Both ends pipeline their
    LPUSHes with their next take, so an item costs each end one round trip, not two.

    --batch 1 (the default) is the usual job-queue pattern: every take is one BRPOP, one item.
    --batch N > 1 is what a careful Redis user could do instead: take up to N waiting items with
    one RPOP <key> <count> (Redis >= 6.2), blocking in BRPOP only when the list is empty; the
    worker then answers consecutive jobs for the same list with one LPUSH. Each end owns one
    redisContext; single-threaded. */
#include "bench.h"
#include "bench_run.h"
#include "../common/plog.h"
#include "../common/signals.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_REPLY_PREFIX "parley-bench:replies:"
#define S_CONNECT_WAIT_MS 5000  /* the server may still be starting */
#define S_COMMAND_TIMEOUT_MS 5000

/* Connects to Redis on 127.0.0.1:port, retrying while it starts. Returns the context, or NULL
   (logged). */
static redisContext *s_connect(int64_t port)
{
    struct timeval timeout = {S_COMMAND_TIMEOUT_MS / 1000, 0};
    int64_t give_up_us = bench_now_us() + S_CONNECT_WAIT_MS * 1000;
    while (true) {
        redisContext *context = redisConnectWithTimeout("127.0.0.1", (int)port, timeout);
        if (context && !context->err) {
            redisSetTimeout(context, timeout);
            return context;
        }
        if (bench_now_us() > give_up_us) {
            plog_error("redis_connect_failed", "port=%lld error=\"%s\"", (long long)port,
                       context ? context->errstr : "out of memory");
            redisFree(context);
            return NULL;
        }
        redisFree(context);
        usleep(50 * 1000);
    }
}

/* Reads one reply into *reply_p. Returns 0, or -1 (logged) when the connection failed or Redis
   answered with an error. */
static int s_get_reply(redisContext *context, redisReply **reply_p, const char *command)
{
    void *reply = NULL;
    if (redisGetReply(context, &reply) != REDIS_OK || !reply) {
        plog_error("redis_failed", "command=%s error=\"%s\"", command, context->errstr);
        return -1;
    }
    *reply_p = reply;
    if ((*reply_p)->type == REDIS_REPLY_ERROR) {
        plog_error("redis_error", "command=%s", command);
        freeReplyObject(reply);
        *reply_p = NULL;
        return -1;
    }
    return 0;
}

/* Takes up to max items from list key, sending the `queued` commands already appended (LPUSHes)
   along with it and dropping their replies. max 1: one "BRPOP key timeout_s". max > 1:
   "RPOP key max", and when nothing was waiting, that BRPOP. Returns the reply that holds the
   items (the caller frees it) with *items and *count set to them (count 0 when none came in
   time), or NULL when Redis failed (logged). */
static redisReply *s_take(redisContext *context, const char *key, int max, const char *timeout_s,
                          size_t queued, redisReply ***items, size_t *count)
{
    redisReply *reply;
    *count = 0;
    if (max > 1)
        redisAppendCommand(context, "RPOP %s %d", key, max);
    else
        redisAppendCommand(context, "BRPOP %s %s", key, timeout_s);
    for (size_t i = 0; i < queued; i++) {
        if (s_get_reply(context, &reply, "LPUSH") != 0)
            return NULL;
        freeReplyObject(reply);
    }
    if (max > 1) {
        if (s_get_reply(context, &reply, "RPOP") != 0)
            return NULL;
        if (reply->type == REDIS_REPLY_ARRAY) {
            *items = reply->element;
            *count = reply->elements;
            return reply;
        }
        freeReplyObject(reply);
        redisAppendCommand(context, "BRPOP %s %s", key, timeout_s);
    }
    if (s_get_reply(context, &reply, "BRPOP") != 0)
        return NULL;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        *items = reply->element + 1;
        *count = 1;
    }
    return reply;
}

/* ---- client ---- */

typedef struct {
    redisContext *context;
    bench_run_t *run;
    const char *jobs_key;
    char reply_key[64];
    size_t payload_size;
    size_t job_size;
    uint8_t *jobs;      /* options->inflight jobs of job_size bytes, rewritten before a push */
    const char **argv;  /* LPUSH key job... */
    size_t *argv_sizes;
} s_client_t;

/* Queues (without sending) an LPUSH of count new jobs, each stamped with the current time. */
static void s_client_append_push(s_client_t *client, size_t count)
{
    client->argv[0] = "LPUSH";
    client->argv_sizes[0] = 5;
    client->argv[1] = client->jobs_key;
    client->argv_sizes[1] = strlen(client->jobs_key);
    for (size_t i = 0; i < count; i++) {
        uint8_t *job = client->jobs + i * client->job_size;
        int64_t now = bench_now_us();
        memcpy(job + client->job_size - client->payload_size, &now, sizeof now);
        client->argv[2 + i] = (const char *)job;
        client->argv_sizes[2 + i] = client->job_size;
    }
    redisAppendCommandArgv(client->context, (int)(2 + count), client->argv, client->argv_sizes);
}

/* Counts one answer. */
static void s_client_answer(s_client_t *client, const redisReply *item, int64_t now)
{
    int64_t sent;
    if (item->type == REDIS_REPLY_STRING && item->len == client->payload_size) {
        memcpy(&sent, item->str, sizeof sent);
        bench_run_answer(client->run, sent, now);
    } else
        bench_run_error(client->run);
}

int bench_redis_client(const bench_options_t *options)
{
    s_client_t client = {.jobs_key = options->jobs_key};
    int rc = 1;
    size_t inflight = (size_t)options->inflight;
    snprintf(client.reply_key, sizeof client.reply_key, S_REPLY_PREFIX "%d", (int)getpid());
    size_t key_size = strlen(client.reply_key);
    uint8_t *payload = bench_payload_new(options->size, &client.payload_size);
    client.job_size = 1 + key_size + client.payload_size;
    client.jobs = payload ? malloc(inflight * client.job_size) : NULL;
    client.argv = calloc(inflight + 2, sizeof *client.argv);
    client.argv_sizes = calloc(inflight + 2, sizeof *client.argv_sizes);
    client.run = bench_run_new(options);
    if (!client.jobs || !client.argv || !client.argv_sizes || !client.run ||
        !(client.context = s_connect(options->redis_port)))
        goto fail;
    for (size_t i = 0; i < inflight; i++) {
        uint8_t *job = client.jobs + i * client.job_size;
        job[0] = (uint8_t)key_size;
        memcpy(job + 1, client.reply_key, key_size);
        memcpy(job + 1 + key_size, payload, client.payload_size);
    }
    int take_max = (int)(options->batch < options->inflight ? options->batch : options->inflight);
    size_t to_push = inflight; /* one new job per answer */
    while (!bench_run_tick(client.run, bench_now_us())) {
        if (to_push)
            s_client_append_push(&client, to_push);
        redisReply **answers;
        redisReply *reply = s_take(client.context, client.reply_key, take_max, "1",
                                   to_push ? 1 : 0, &answers, &to_push);
        if (!reply)
            goto fail;
        int64_t now = bench_now_us();
        for (size_t i = 0; i < to_push; i++)
            s_client_answer(&client, answers[i], now);
        freeReplyObject(reply);
    }
    if (bench_run_report(client.run) == 0)
        rc = 0;
fail:
    if (client.context)
        redisFree(client.context);
    bench_run_destroy(&client.run);
    free(client.argv_sizes);
    free(client.argv);
    free(client.jobs);
    free(payload);
    return rc;
}

/* ---- worker ---- */

typedef struct {
    redisContext *context;
    redisReply **jobs; /* the batch being answered, borrowed from its reply */
    size_t job_count;
    const char *argv[BENCH_BATCH_MAX + 2];
    size_t argv_sizes[BENCH_BATCH_MAX + 2];
    uint64_t malformed;
} s_worker_t;

/* Splits a job into its reply list name and payload. Returns 0, or -1 when it is malformed. */
static int s_job_parse(const redisReply *job, const char **key, size_t *key_size,
                       const char **payload, size_t *payload_size)
{
    if (job->type != REDIS_REPLY_STRING || job->len < 1)
        return -1;
    *key_size = (uint8_t)job->str[0];
    if (*key_size == 0 || 1 + *key_size > job->len)
        return -1;
    *key = job->str + 1;
    *payload = job->str + 1 + *key_size;
    *payload_size = job->len - 1 - *key_size;
    return 0;
}

/* Queues one LPUSH per run of consecutive jobs for the same reply list. Returns how many
   commands were queued. */
static size_t s_worker_append_answers(s_worker_t *worker)
{
    size_t commands = 0, argc = 0;
    const char *group_key = NULL;
    size_t group_key_size = 0;
    for (size_t i = 0; i <= worker->job_count; i++) {
        const char *key = NULL, *payload = NULL;
        size_t key_size = 0, payload_size = 0;
        bool last = i == worker->job_count;
        if (!last && s_job_parse(worker->jobs[i], &key, &key_size, &payload, &payload_size)) {
            worker->malformed++;
            continue;
        }
        bool same = !last && group_key && key_size == group_key_size &&
                    memcmp(key, group_key, key_size) == 0;
        if (argc && !same) {
            redisAppendCommandArgv(worker->context, (int)argc, worker->argv, worker->argv_sizes);
            commands++;
            argc = 0;
        }
        if (last)
            break;
        if (argc == 0) {
            worker->argv[0] = "LPUSH";
            worker->argv_sizes[0] = 5;
            worker->argv[1] = key;
            worker->argv_sizes[1] = key_size;
            argc = 2;
            group_key = key;
            group_key_size = key_size;
        }
        worker->argv[argc] = payload;
        worker->argv_sizes[argc++] = payload_size;
    }
    return commands;
}

int bench_redis_worker(const bench_options_t *options)
{
    int signal_fd = signals_open();
    if (signal_fd < 0) {
        plog_error("setup_failed", "reason=signalfd");
        return 1;
    }
    s_worker_t *worker = calloc(1, sizeof *worker);
    if (!worker || !(worker->context = s_connect(options->redis_port))) {
        free(worker);
        return 1;
    }
    int rc = 0;
    size_t queued = 0; /* LPUSHes appended, sent with the next take */
    while (!signals_read(signal_fd)) {
        redisReply **jobs;
        size_t count;
        redisReply *reply = s_take(worker->context, options->jobs_key, (int)options->batch, "0.1",
                                   queued, &jobs, &count);
        if (!reply) {
            rc = 1;
            break;
        }
        worker->jobs = jobs;
        worker->job_count = count;
        queued = s_worker_append_answers(worker); /* copies the jobs: reply can go */
        freeReplyObject(reply);
    }
    if (worker->malformed)
        plog_warn("malformed_jobs", "count=%llu", (unsigned long long)worker->malformed);
    redisFree(worker->context);
    free(worker);
    return rc;
}

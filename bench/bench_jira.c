/*  bench_jira.c - `parley-bench jira-client`: the load generator for the jira worker, through
    the broker like a gateway (common/bus_client).

    Setup: one customer (jira.identity) and options->inflight conversations
    (conversation.start) in tenant options->tenant, project options->project. Then each
    conversation is one slot with one conversation.message in flight at a time under the
    conversation's order key, as the gateway sends them.

    Two modes:
      --messages N   (overhead) sends N messages after 20 unmeasured ones and prints every
                     latency: `latencies_us: a,b,...` in send order, plus `answers` and
                     `errors`; run it with one slot, so the script can pair each latency with
                     the sandbox's own time for that comment.
      otherwise      (throughput) the usual bench_run window: rps, p50_us, p99_us, ...
    Runs one zloop; single-threaded apart from libzmq's I/O thread. */
#include "bench.h"
#include "bench_run.h"
#include "../common/bus_client.h"
#include "../common/plog.h"
#include "../proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TICK_MS 5
#define S_WARM_MESSAGES 20
#define S_TEXT "Hello, this is a benchmark message of typical chat length. Thanks!"

typedef struct s_bench_t s_bench_t;

typedef struct {
    s_bench_t *bench;
    char issue[PROTO_NAME_MAX + 1];
    char order_key[PROTO_NAME_MAX + 1];
    int64_t sent_us;
    uint64_t sequence;
} s_slot_t;

struct s_bench_t {
    const bench_options_t *options;
    bench_run_t *run;
    bus_client_t *client;
    zloop_t *loop;
    s_slot_t *slots;
    char account[PROTO_NAME_MAX + 1];
    int64_t started, answered, errors; /* overhead mode */
    int64_t *latencies;                /* overhead mode: options->messages samples */
    int64_t recorded;
    bool failed, done;
};

/* One synchronous call during setup: runs the loop until the answer. Returns 0 and copies
   the payload decoded by decode into out, or -1. */
typedef struct {
    bool answered;
    const char *error;
    uint8_t reply[4096];
    size_t size;
} s_sync_t;

static void s_on_sync(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_sync_t *sync = arg;
    sync->answered = true;
    sync->error = result->error_code ? "error" : NULL;
    if (result->error_code)
        plog_error("setup_call_failed", "code=%s message=\"%s\"", result->error_code,
                   result->error_message ? result->error_message : "");
    sync->size = result->payload_size < sizeof sync->reply ? result->payload_size : 0;
    if (sync->size)
        memcpy(sync->reply, result->payload, sync->size);
}

static int s_sync_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    return ((s_sync_t *)arg)->answered ? -1 : 0;
}

static int s_call(s_bench_t *bench, const char *type, const proto_buffer_t *payload,
                  s_sync_t *sync)
{
    memset(sync, 0, sizeof *sync);
    if (!bus_client_request(bench->client, "jira", type, payload->data, payload->size, 30000,
                            s_on_sync, sync))
        return -1;
    int timer = zloop_timer(bench->loop, 1, 0, s_sync_tick, sync);
    zloop_start(bench->loop);
    zloop_timer_end(bench->loop, timer);
    return sync->answered && !sync->error ? 0 : -1;
}

static int s_setup(s_bench_t *bench)
{
    const bench_options_t *o = bench->options;
    proto_buffer_t encoded;
    s_sync_t sync;
    proto_jira_identity_t identity = {.email = "bench.customer@example.com",
                                      .email_len = 26, .has_display_name = true,
                                      .display_name = "Bench Customer", .display_name_len = 14};
    proto_name_set(identity.tenant, o->tenant);
    proto_buffer_init(&encoded);
    proto_jira_identity_encode(&identity, &encoded);
    int rc = s_call(bench, "jira.identity", &encoded, &sync);
    proto_buffer_release(&encoded);
    proto_jira_identity_reply_t who;
    proto_decode_error_t why;
    if (rc != 0 || proto_jira_identity_reply_decode(&who, sync.reply, sync.size, &why) != 0)
        return -1;
    snprintf(bench->account, sizeof bench->account, "%s", who.account);
    unsigned run = (unsigned)(bench_now_us() & 0xffffff);
    for (int64_t i = 0; i < o->inflight; i++) {
        proto_conversation_start_t start = {.first_message = S_TEXT,
                                            .first_message_len = (uint32_t)strlen(S_TEXT)};
        proto_name_set(start.tenant, o->tenant);
        proto_name_set(start.project, o->project);
        snprintf(start.conversation, sizeof start.conversation, "bench-%x-%lld", run,
                 (long long)i);
        proto_name_set(start.customer, bench->account);
        proto_buffer_init(&encoded);
        proto_conversation_start_encode(&start, &encoded);
        rc = s_call(bench, "conversation.start", &encoded, &sync);
        proto_buffer_release(&encoded);
        proto_conversation_started_t started;
        if (rc != 0 ||
            proto_conversation_started_decode(&started, sync.reply, sync.size, &why) != 0)
            return -1;
        s_slot_t *slot = &bench->slots[i];
        slot->bench = bench;
        snprintf(slot->issue, sizeof slot->issue, "%s", started.issue);
        snprintf(slot->order_key, sizeof slot->order_key, "%.30s.%.30s", o->tenant,
                 started.issue);
    }
    return 0;
}

static void s_on_answer(bus_client_t *client, const bus_result_t *result, void *arg);

static int s_send(s_bench_t *bench, s_slot_t *slot)
{
    proto_conversation_message_t message = {.text = S_TEXT,
                                            .text_len = (uint32_t)strlen(S_TEXT)};
    proto_name_set(message.tenant, bench->options->tenant);
    proto_name_set(message.issue, slot->issue);
    snprintf(message.message, sizeof message.message, "b%llu",
             (unsigned long long)++slot->sequence);
    proto_name_set(message.author_kind, "customer");
    proto_name_set(message.author, bench->account);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    proto_conversation_message_encode(&message, &encoded);
    slot->sent_us = bench_now_us();
    uint64_t id = bus_client_request_ordered(bench->client, "jira", "conversation.message",
                                             slot->order_key, encoded.data, encoded.size,
                                             (uint32_t)bench->options->timeout_ms, s_on_answer,
                                             slot);
    proto_buffer_release(&encoded);
    if (!id) {
        bench->failed = true;
        return -1;
    }
    bench->started++;
    return 0;
}

static void s_on_answer(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_slot_t *slot = arg;
    s_bench_t *bench = slot->bench;
    int64_t now = bench_now_us();
    bool ok = !result->error_code;
    if (bench->latencies) { /* overhead mode: sequential, every answer counted */
        bench->answered++;
        if (!ok)
            bench->errors++;
        else if (bench->answered > S_WARM_MESSAGES)
            bench->latencies[bench->recorded++] = now - slot->sent_us;
        if (bench->answered >= S_WARM_MESSAGES + bench->options->messages) {
            bench->done = true;
            return;
        }
    } else if (ok)
        bench_run_answer(bench->run, slot->sent_us, now);
    else
        bench_run_error(bench->run);
    if (!bench->failed)
        s_send(bench, slot);
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_bench_t *bench = arg;
    if (bench->latencies)
        return bench->done || bench->failed ? -1 : 0;
    return bench->failed || bench_run_tick(bench->run, bench_now_us()) ? -1 : 0;
}

int bench_jira_client(const bench_options_t *options)
{
    bus_client_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.link},
        {"Bus client", bus_client_config_options, bus_client_config_option_count, &config}};
    char *no_args[] = {"parley-bench"};
    if (config_load(tables, 2, 1, no_args, "parley-bench jira-client") != 0)
        return 1;
    s_bench_t bench = {.options = options};
    int rc = 1;
    bench.run = bench_run_new(options);
    bench.slots = calloc((size_t)options->inflight, sizeof *bench.slots);
    bench.client = bus_client_new(&config, "bench");
    bench.loop = zloop_new();
    if (options->messages > 0)
        bench.latencies = calloc((size_t)options->messages, sizeof *bench.latencies);
    if (!bench.run || !bench.slots || !bench.client || !bench.loop ||
        (options->messages > 0 && !bench.latencies) ||
        bus_client_attach(bench.client, bench.loop) != 0 || s_setup(&bench) != 0) {
        plog_error("setup_failed", "endpoint=%s", config.link.broker_endpoint);
        goto fail;
    }
    if (zloop_timer(bench.loop, S_TICK_MS, 0, s_on_tick, &bench) < 0)
        goto fail;
    for (int64_t i = 0; i < options->inflight; i++)
        if (s_send(&bench, &bench.slots[i]) != 0)
            goto fail;
    zloop_start(bench.loop);
    if (bench.latencies && !bench.failed && bench.recorded > 0) {
        printf("answers: %lld\nerrors: %lld\nlatencies_us: ", (long long)bench.answered,
               (long long)bench.errors);
        for (int64_t i = 0; i < bench.recorded; i++)
            printf("%s%lld", i ? "," : "", (long long)bench.latencies[i]);
        printf("\n");
        rc = 0;
    } else if (!bench.latencies && !bench.failed && bench_run_report(bench.run) == 0)
        rc = 0;
fail:
    bus_client_destroy(&bench.client);
    zloop_destroy(&bench.loop);
    free(bench.slots);
    free(bench.latencies);
    bench_run_destroy(&bench.run);
    zsys_shutdown();
    return rc;
}

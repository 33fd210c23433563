/*  bench_broker.c - `parley-bench broker-client`: the load generator for the broker, built on
    common/bus_client (the client library the gateways use).

    Keeps options->inflight "echo.request" requests in flight to service "echo" and checks each
    answer decodes as an echo reply with the data it sent. Each request slot carries its own
    send time through the callback's argument, so nothing is allocated per request here. The
    broker's endpoints come from the environment like any bus client's (PARLEY_BROKER_*).
    Runs one zloop; single-threaded apart from libzmq's I/O thread. */
#include "bench.h"
#include "bench_run.h"
#include "../common/bus_client.h"
#include "../common/plog.h"
#include "../proto/proto.h"

#include <stdlib.h>

#define S_TICK_MS 5

typedef struct s_bench_t s_bench_t;

typedef struct {
    s_bench_t *bench;
    int64_t sent_us;
} s_slot_t;

struct s_bench_t {
    const bench_options_t *options;
    bench_run_t *run;
    bus_client_t *client;
    uint8_t *payload;
    size_t payload_size;
    s_slot_t *slots; /* options->inflight, each one request in flight at a time */
    bool refused;    /* the client refused a request: stop and fail */
};

static void s_on_answer(bus_client_t *client, const bus_result_t *result, void *arg);

/* Sends the slot's next request. Returns 0, or -1 when the client refused it. */
static int s_send(s_bench_t *bench, s_slot_t *slot)
{
    slot->sent_us = bench_now_us();
    uint64_t id = bus_client_request(bench->client, "echo", "echo.request", bench->payload,
                                     bench->payload_size, (uint32_t)bench->options->timeout_ms,
                                     s_on_answer, slot);
    if (id == 0) {
        plog_error("request_refused", "pending=%zu", bus_client_pending(bench->client));
        bench->refused = true;
        return -1;
    }
    return 0;
}

static void s_on_answer(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_slot_t *slot = arg;
    s_bench_t *bench = slot->bench;
    int64_t now = bench_now_us();
    proto_echo_reply_t reply;
    proto_decode_error_t why;
    if (result->error_code ||
        proto_echo_reply_decode(&reply, result->payload, result->payload_size, &why) != 0 ||
        reply.data_len != (uint32_t)bench->options->size)
        bench_run_error(bench->run);
    else
        bench_run_answer(bench->run, slot->sent_us, now);
    if (!bench->refused)
        s_send(bench, slot);
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_bench_t *bench = arg;
    return bench->refused || bench_run_tick(bench->run, bench_now_us()) ? -1 : 0;
}

int bench_broker_client(const bench_options_t *options)
{
    bus_client_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.link},
        {"Bus client", bus_client_config_options, bus_client_config_option_count, &config}};
    char *no_args[] = {"parley-bench"};
    if (config_load(tables, 2, 1, no_args, "parley-bench broker-client") != 0)
        return 1;
    s_bench_t bench = {.options = options};
    int rc = 1;
    zloop_t *loop = NULL;
    bench.run = bench_run_new(options);
    bench.payload = bench_payload_new(options->size, &bench.payload_size);
    bench.slots = calloc((size_t)options->inflight, sizeof *bench.slots);
    bench.client = bus_client_new(&config, "bench");
    loop = zloop_new();
    if (!bench.run || !bench.payload || !bench.slots || !bench.client || !loop ||
        bus_client_attach(bench.client, loop) != 0 ||
        zloop_timer(loop, S_TICK_MS, 0, s_on_tick, &bench) < 0) {
        plog_error("setup_failed", "endpoint=%s", config.link.broker_endpoint);
        goto fail;
    }
    for (int64_t i = 0; i < options->inflight; i++) {
        bench.slots[i].bench = &bench;
        if (s_send(&bench, &bench.slots[i]) != 0)
            goto fail;
    }
    zloop_start(loop);
    if (!bench.refused && bench_run_report(bench.run) == 0)
        rc = 0;
fail:
    bus_client_destroy(&bench.client); /* before its loop; drops what is pending, silently */
    zloop_destroy(&loop);
    free(bench.slots);
    free(bench.payload);
    bench_run_destroy(&bench.run);
    zsys_shutdown();
    return rc;
}

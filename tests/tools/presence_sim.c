/*  presence_sim.c - simulates gateways' websockets against the presence service, through the
    broker, for tests and benchmarks.

      presence-sim --sockets N [--agents A] [--tenant T] [--gateway G] [--interval-ms 1000]
                   [--duration-ms 30000] [--batch 500] [--close] [--flood K] [--no-open]

    Opens N sockets (the first A of them agents serving project SUP), heartbeats every socket
    once per interval in batches of up to --batch sockets, for the duration, then (with --close)
    closes them all. Prints one JSON line: sockets, heartbeats sent and acknowledged, errors by
    code, the time of the last heartbeat acknowledged (ms since the epoch) so a test can
    compare it with what DynamoDB holds, and cpu_ms (this process's CPU time).

    --flood K measures how fast the service absorbs heartbeats instead: once the sockets are
    open, K heartbeat batches are kept in flight (each answer sends the next batch, cycling over
    the sockets) for the duration; --interval-ms is then unused. The report adds flood_ms (first
    batch sent to last answer) and heartbeats_per_s. --no-open skips opening (the sockets are
    already open, e.g. from an earlier run against the same tenant and gateway). Built on
    common/bus_client; single-threaded (one zloop). */
#include "../../common/bus_client.h"
#include "../../common/plog.h"
#include "../../proto/proto.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define S_FLOOD_TICK_MS 20 /* in flood mode the timer only moves the phases on */

typedef struct {
    long sockets, agents, interval_ms, duration_ms, batch;
    const char *tenant, *gateway;
    int close;
    long flood;  /* heartbeat batches kept in flight; 0 = one round per interval */
    int no_open; /* the sockets are already open */
} s_options_t;

/* One encoded presence.heartbeat request, sent as is (flood mode). */
typedef struct {
    uint8_t *data;
    size_t size;
    uint32_t sockets;
} s_batch_t;

typedef struct {
    s_options_t opt;
    bus_client_t *client;
    zloop_t *loop;
    long opened, closed, beats_sent, beats_acked, pending;
    int64_t last_ack_wall_ms;
    int64_t begin_ms;
    json_t *errors;
    int phase; /* 0 opening, 1 heartbeating, 2 closing, 3 done */
    /* flood mode */
    s_batch_t *batches; /* every socket once, in --batch sized requests */
    size_t batch_count, next_batch;
    bool flooding;             /* sending: each answer sends the next batch */
    int64_t flood_begin_ms;    /* zclock_mono() when the first batch went out */
    int64_t flood_last_ack_ms; /* zclock_mono() of the last answer */
} s_sim_t;

static void s_flood_next(s_sim_t *sim);

static void s_socket_name(char *out, size_t size, long i)
{
    snprintf(out, size, "sock-%06ld", i);
}

static void s_count_error(s_sim_t *sim, const bus_result_t *result)
{
    json_t *count = json_object_get(sim->errors, result->error_code);
    json_object_set_new(sim->errors, result->error_code,
                        json_integer(count ? json_integer_value(count) + 1 : 1));
}

static void s_on_open(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_sim_t *sim = arg;
    sim->pending--;
    if (result->error_code)
        s_count_error(sim, result);
    else
        sim->opened++;
}

static void s_on_beat(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_sim_t *sim = arg;
    sim->pending--;
    proto_presence_done_t *done = malloc(sizeof *done);
    if (result->error_code)
        s_count_error(sim, result);
    else if (done && proto_presence_done_decode(done, result->payload, result->payload_size,
                                                NULL) == 0) {
        sim->beats_acked += done->updated;
        sim->last_ack_wall_ms = zclock_time();
    }
    free(done);
    if (sim->opt.flood) {
        sim->flood_last_ack_ms = zclock_mono();
        if (sim->flooding && sim->flood_last_ack_ms - sim->flood_begin_ms < sim->opt.duration_ms)
            s_flood_next(sim);
        else
            sim->flooding = false;
    }
}

/* Sends a request. Returns true, or false when the client refused it (then fn never runs). */
static bool s_send(s_sim_t *sim, const char *type, const uint8_t *data, size_t size,
                   bus_reply_fn *fn)
{
    if (!bus_client_request(sim->client, "presence", type, data, size, 10000, fn, sim))
        return false;
    sim->pending++;
    return true;
}

static void s_open_all(s_sim_t *sim)
{
    for (long i = 0; i < sim->opt.sockets; i++) {
        proto_presence_open_t open = {0};
        proto_name_set(open.tenant, sim->opt.tenant);
        proto_name_set(open.gateway, sim->opt.gateway);
        s_socket_name(open.socket, sizeof open.socket, i);
        if (i < sim->opt.agents) {
            proto_name_set(open.kind, "agent");
            open.has_account = true;
            snprintf(open.account, sizeof open.account, "agent-%06ld", i);
            open.has_projects = true;
            open.projects_count = 1;
            proto_name_set(open.projects[0], "SUP");
        } else
            proto_name_set(open.kind, "customer");
        proto_buffer_t encoded;
        proto_buffer_init(&encoded);
        if (proto_presence_open_encode(&open, &encoded) == 0)
            s_send(sim, "presence.open", encoded.data, encoded.size, s_on_open);
        proto_buffer_release(&encoded);
    }
}

static void s_beat_all(s_sim_t *sim)
{
    proto_presence_heartbeat_t *beat = calloc(1, sizeof *beat);
    if (!beat)
        return;
    proto_name_set(beat->tenant, sim->opt.tenant);
    proto_name_set(beat->gateway, sim->opt.gateway);
    for (long i = 0; i < sim->opt.sockets;) {
        beat->sockets_count = 0;
        for (; i < sim->opt.sockets && beat->sockets_count < (uint32_t)sim->opt.batch; i++)
            s_socket_name(beat->sockets[beat->sockets_count++], PROTO_NAME_MAX + 1, i);
        proto_buffer_t encoded;
        proto_buffer_init(&encoded);
        if (proto_presence_heartbeat_encode(beat, &encoded) == 0) {
            s_send(sim, "presence.heartbeat", encoded.data, encoded.size, s_on_beat);
            sim->beats_sent += beat->sockets_count;
        }
        proto_buffer_release(&encoded);
    }
    free(beat);
}

static void s_close_all(s_sim_t *sim)
{
    for (long i = 0; i < sim->opt.sockets; i++) {
        proto_presence_close_t close_request = {0};
        proto_name_set(close_request.tenant, sim->opt.tenant);
        proto_name_set(close_request.gateway, sim->opt.gateway);
        s_socket_name(close_request.socket, sizeof close_request.socket, i);
        proto_buffer_t encoded;
        proto_buffer_init(&encoded);
        if (proto_presence_close_encode(&close_request, &encoded) == 0) {
            s_send(sim, "presence.close", encoded.data, encoded.size, s_on_open);
            sim->closed++;
        }
        proto_buffer_release(&encoded);
    }
}

/* Encodes every socket's heartbeat once, in batches of --batch. Returns 0, or -1 when
   memory runs out. */
static int s_flood_prepare(s_sim_t *sim)
{
    size_t count = (size_t)((sim->opt.sockets + sim->opt.batch - 1) / sim->opt.batch);
    proto_presence_heartbeat_t *beat = calloc(1, sizeof *beat);
    sim->batches = calloc(count, sizeof *sim->batches);
    if (!beat || !sim->batches) {
        free(beat);
        return -1;
    }
    proto_name_set(beat->tenant, sim->opt.tenant);
    proto_name_set(beat->gateway, sim->opt.gateway);
    int rc = 0;
    for (long i = 0; i < sim->opt.sockets && rc == 0;) {
        beat->sockets_count = 0;
        for (; i < sim->opt.sockets && beat->sockets_count < (uint32_t)sim->opt.batch; i++)
            s_socket_name(beat->sockets[beat->sockets_count++], PROTO_NAME_MAX + 1, i);
        proto_buffer_t encoded;
        proto_buffer_init(&encoded);
        s_batch_t *batch = &sim->batches[sim->batch_count];
        if (proto_presence_heartbeat_encode(beat, &encoded) == 0 &&
            (batch->data = malloc(encoded.size))) {
            memcpy(batch->data, encoded.data, encoded.size);
            batch->size = encoded.size;
            batch->sockets = beat->sockets_count;
            sim->batch_count++;
        } else
            rc = -1;
        proto_buffer_release(&encoded);
    }
    free(beat);
    return rc;
}

/* Sends the next prepared batch (cycling over them). */
static void s_flood_next(s_sim_t *sim)
{
    s_batch_t *batch = &sim->batches[sim->next_batch];
    sim->next_batch = (sim->next_batch + 1) % sim->batch_count;
    if (s_send(sim, "presence.heartbeat", batch->data, batch->size, s_on_beat))
        sim->beats_sent += batch->sockets;
}

/* Starts the flood: --flood batches in flight from now on. */
static void s_flood_start(s_sim_t *sim)
{
    sim->flooding = true;
    sim->flood_begin_ms = sim->flood_last_ack_ms = zclock_mono();
    for (long i = 0; i < sim->opt.flood; i++)
        s_flood_next(sim);
}

/* Flood mode's phases: open, wait for every open to be answered, flood, wait for the last
   answers, then close (with --close) like the round mode. */
static int s_on_flood_tick(s_sim_t *sim)
{
    if (sim->phase == 0) {
        if (!sim->opt.no_open)
            s_open_all(sim);
        sim->phase = 1;
        return 0;
    }
    if (sim->phase == 1 && sim->pending == 0) {
        if (sim->flood_begin_ms == 0) {
            s_flood_start(sim);
            return 0;
        }
        sim->phase = 2;
    }
    if (sim->phase == 2 && sim->pending == 0) {
        if (sim->opt.close)
            s_close_all(sim);
        sim->phase = 3;
    }
    return sim->phase == 3 && sim->pending == 0 ? -1 : 0;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_sim_t *sim = arg;
    if (sim->opt.flood)
        return s_on_flood_tick(sim);
    if (sim->phase == 0) {
        s_open_all(sim);
        sim->phase = 1;
        sim->begin_ms = zclock_mono();
        return 0;
    }
    if (sim->phase == 1) {
        if (zclock_mono() - sim->begin_ms < sim->opt.duration_ms) {
            s_beat_all(sim);
            return 0;
        }
        sim->phase = 2;
    }
    if (sim->phase == 2 && sim->pending == 0) {
        if (sim->opt.close)
            s_close_all(sim);
        sim->phase = 3;
    }
    return sim->phase == 3 && sim->pending == 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    s_options_t opt = {100, 0, 1000, 5000, 500, "acme", "gw-sim", 0, 0, 0};
    static struct option options[] = {
        {"sockets", required_argument, 0, 's'},  {"agents", required_argument, 0, 'a'},
        {"tenant", required_argument, 0, 't'},   {"gateway", required_argument, 0, 'g'},
        {"interval-ms", required_argument, 0, 'i'}, {"duration-ms", required_argument, 0, 'd'},
        {"batch", required_argument, 0, 'b'},    {"close", no_argument, 0, 'c'},
        {"flood", required_argument, 0, 'f'},    {"no-open", no_argument, 0, 'n'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 's': opt.sockets = atol(optarg); break;
        case 'a': opt.agents = atol(optarg); break;
        case 't': opt.tenant = optarg; break;
        case 'g': opt.gateway = optarg; break;
        case 'i': opt.interval_ms = atol(optarg); break;
        case 'd': opt.duration_ms = atol(optarg); break;
        case 'b': opt.batch = atol(optarg); break;
        case 'c': opt.close = 1; break;
        case 'f': opt.flood = atol(optarg); break;
        case 'n': opt.no_open = 1; break;
        default: fprintf(stderr, "see the top of presence_sim.c\n"); return 2;
        }
    }
    if (opt.sockets < 1 || opt.interval_ms < 10 || opt.batch < 1 ||
        opt.batch > PROTO_SOCKETS_MAX || opt.flood < 0 || opt.flood > 10000 ||
        opt.duration_ms < 0) {
        fprintf(stderr, "invalid arguments\n");
        return 2;
    }
    bus_client_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.link},
        {"Bus client", bus_client_config_options, bus_client_config_option_count, &config}};
    char *no_args[] = {argv[0]};
    if (config_load(tables, 2, 1, no_args, "presence-sim") != 0)
        return 2;
    plog_init("presence-sim", PLOG_WARN);
    s_sim_t sim = {.opt = opt, .errors = json_object()};
    sim.client = bus_client_new(&config, "presence-sim");
    sim.loop = zloop_new();
    if (!sim.client || !sim.loop || bus_client_attach(sim.client, sim.loop) != 0 ||
        (opt.flood && s_flood_prepare(&sim) != 0))
        return 1;
    zloop_timer(sim.loop, (size_t)(opt.flood ? S_FLOOD_TICK_MS : opt.interval_ms), 0, s_on_tick,
                &sim);
    zloop_start(sim.loop);
    struct rusage usage;
    int64_t cpu_ms = getrusage(RUSAGE_SELF, &usage) == 0
                         ? (int64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                               (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000
                         : -1;
    json_t *report = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I}", "sockets",
                               (json_int_t)opt.sockets, "opened", (json_int_t)sim.opened,
                               "heartbeats_sent", (json_int_t)sim.beats_sent, "heartbeats_acked",
                               (json_int_t)sim.beats_acked, "closed", (json_int_t)sim.closed,
                               "last_ack_ms", (json_int_t)sim.last_ack_wall_ms, "errors",
                               sim.errors, "cpu_ms", (json_int_t)cpu_ms);
    if (opt.flood) {
        int64_t flood_ms = sim.flood_last_ack_ms - sim.flood_begin_ms;
        json_object_set_new(report, "flood_ms", json_integer(flood_ms));
        json_object_set_new(report, "heartbeats_per_s",
                            json_integer(flood_ms > 0 ? sim.beats_acked * 1000 / flood_ms : 0));
    }
    for (size_t i = 0; i < sim.batch_count; i++)
        free(sim.batches[i].data);
    free(sim.batches);
    char *text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
    json_decref(report);
    bus_client_destroy(&sim.client);
    zloop_destroy(&sim.loop);
    zsys_shutdown();
    return 0;
}

/*  presence_sim.c - simulates gateways' websockets against the presence service, through the
    broker, for tests and benchmarks.

      presence-sim --sockets N [--agents A] [--tenant T] [--gateway G] [--interval-ms 1000]
                   [--duration-ms 30000] [--batch 500] [--close]

    Opens N sockets (the first A of them agents serving project SUP), heartbeats every socket
    once per interval in batches of up to --batch sockets, for the duration, then (with --close)
    closes them all. Prints one JSON line: sockets, heartbeats sent and acknowledged, errors by
    code, and the time of the last heartbeat acknowledged (ms since the epoch) so a test can
    compare it with what DynamoDB holds. Built on common/bus_client. */
#include "../../common/bus_client.h"
#include "../../common/plog.h"
#include "../../proto/proto.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long sockets, agents, interval_ms, duration_ms, batch;
    const char *tenant, *gateway;
    int close;
} s_options_t;

typedef struct {
    s_options_t opt;
    bus_client_t *client;
    zloop_t *loop;
    long opened, closed, beats_sent, beats_acked, pending;
    int64_t last_ack_wall_ms;
    int64_t begin_ms;
    json_t *errors;
    int phase; /* 0 opening, 1 heartbeating, 2 closing, 3 done */
} s_sim_t;

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
}

static void s_send(s_sim_t *sim, const char *type, const uint8_t *data, size_t size,
                   bus_reply_fn *fn)
{
    if (bus_client_request(sim->client, "presence", type, data, size, 10000, fn, sim))
        sim->pending++;
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

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_sim_t *sim = arg;
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
    s_options_t opt = {100, 0, 1000, 5000, 500, "acme", "gw-sim", 0};
    static struct option options[] = {
        {"sockets", required_argument, 0, 's'},  {"agents", required_argument, 0, 'a'},
        {"tenant", required_argument, 0, 't'},   {"gateway", required_argument, 0, 'g'},
        {"interval-ms", required_argument, 0, 'i'}, {"duration-ms", required_argument, 0, 'd'},
        {"batch", required_argument, 0, 'b'},    {"close", no_argument, 0, 'c'},
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
        default: fprintf(stderr, "see the top of presence_sim.c\n"); return 2;
        }
    }
    if (opt.sockets < 1 || opt.interval_ms < 10 || opt.batch < 1 ||
        opt.batch > PROTO_SOCKETS_MAX) {
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
    if (!sim.client || !sim.loop || bus_client_attach(sim.client, sim.loop) != 0)
        return 1;
    zloop_timer(sim.loop, (size_t)opt.interval_ms, 0, s_on_tick, &sim);
    zloop_start(sim.loop);
    json_t *report = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "sockets",
                               (json_int_t)opt.sockets, "opened", (json_int_t)sim.opened,
                               "heartbeats_sent", (json_int_t)sim.beats_sent, "heartbeats_acked",
                               (json_int_t)sim.beats_acked, "closed", (json_int_t)sim.closed,
                               "last_ack_ms", (json_int_t)sim.last_ack_wall_ms, "errors",
                               sim.errors);
    char *text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
    json_decref(report);
    bus_client_destroy(&sim.client);
    zloop_destroy(&sim.loop);
    zsys_shutdown();
    return 0;
}

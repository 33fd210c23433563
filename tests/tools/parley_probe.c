/*  parley_probe.c - a command-line client of the internal bus, for tests and operators.

    Sends echo requests through the broker with a given concurrency and prints one JSON line:
    how many were sent, answered, failed (by error code), answered twice (must be 0), which
    instances answered, and latency percentiles. Built on common/bus_client, so it exercises the
    same client code as the gateway. Endpoints come from the environment (see --help).

      parley-probe --requests 1000 --concurrency 50 [--delay-ms 0] [--timeout-ms 5000]
                   [--service echo] [--fail-code CODE] [--size BYTES] [--events N]

    --events N also subscribes to topic "probe.<pid>", publishes "probe.ping" events every 50 ms
    until one comes back (the subscription has then reached the publisher through the broker),
    then publishes N "probe.event" events and reports how many came back. */
#include "../../common/bus_client.h"
#include "../../common/latency_histogram.h"
#include "../../common/plog.h"
#include "../../proto/proto.h"

#include <getopt.h>
#include <string.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    long requests, concurrency, delay_ms, timeout_ms, size, events;
    const char *service, *fail_code;
} s_options_t;

typedef struct {
    s_options_t opt;
    bus_client_t *client;
    zloop_t *loop;
    uint8_t *payload;
    size_t payload_size;
    long sent, answered, replies, duplicates, refused;
    uint8_t *seen;                  /* answers per request index */
    int64_t *started_ms;            /* send time per request index */
    json_t *errors;                 /* code -> count */
    json_t *instances;              /* instance -> count */
    latency_histogram_t *latency;
    long events_received, pings_sent, pings_received;
    bool subscribed;                /* a ping came back */
    char topic[64];
    int64_t begin_ms;
} s_probe_t;

static void s_send_next(s_probe_t *probe);

static void s_on_reply(bus_client_t *client, const bus_result_t *result, void *arg)
{
    (void)client;
    s_probe_t *probe = ((void **)arg)[0];
    long index = (long)(intptr_t)((void **)arg)[1];
    free(arg);
    if (probe->seen[index]++) {
        probe->duplicates++;
        return;
    }
    probe->answered++;
    int64_t now = zclock_mono();
    latency_histogram_record(probe->latency, (uint64_t)(now - probe->started_ms[index]) * 1000,
                             now);
    if (result->error_code) {
        json_t *count = json_object_get(probe->errors, result->error_code);
        json_object_set_new(probe->errors, result->error_code,
                            json_integer(count ? json_integer_value(count) + 1 : 1));
    } else {
        probe->replies++;
        proto_echo_reply_t reply;
        proto_decode_error_t why;
        if (proto_echo_reply_decode(&reply, result->payload, result->payload_size, &why) == 0) {
            json_t *count = json_object_get(probe->instances, reply.instance);
            json_object_set_new(probe->instances, reply.instance,
                                json_integer(count ? json_integer_value(count) + 1 : 1));
        }
    }
    s_send_next(probe);
}

static void s_send_next(s_probe_t *probe)
{
    while (probe->sent < probe->opt.requests &&
           probe->sent - probe->answered < probe->opt.concurrency) {
        void **arg = malloc(2 * sizeof(void *));
        if (!arg)
            return;
        long index = probe->sent++;
        arg[0] = probe;
        arg[1] = (void *)(intptr_t)index;
        probe->started_ms[index] = zclock_mono();
        if (bus_client_request(probe->client, probe->opt.service, "echo.request", probe->payload,
                               probe->payload_size, (uint32_t)probe->opt.timeout_ms, s_on_reply,
                               arg) == 0) {
            free(arg);
            probe->refused++;
            probe->answered++;
            probe->seen[index] = 1;
        }
    }
}

static void s_on_event(bus_client_t *client, const char *topic, size_t topic_size,
                       const proto_event_t *header, const uint8_t *payload, size_t size,
                       void *arg)
{
    (void)client;
    (void)topic;
    (void)topic_size;
    (void)payload;
    (void)size;
    s_probe_t *probe = arg;
    if (strcmp(header->type, "probe.ping") == 0) {
        probe->pings_received++;
        if (!probe->subscribed) {
            probe->subscribed = true;
            for (long i = 0; i < probe->opt.events; i++)
                bus_client_publish(probe->client, probe->topic, "probe.event",
                                   (const uint8_t *)"x", 1);
        }
    } else
        probe->events_received++;
}

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_probe_t *probe = arg;
    bool requests_done = probe->answered >= probe->opt.requests;
    bool events_done = probe->events_received >= probe->opt.events ||
                       zclock_mono() - probe->begin_ms > probe->opt.timeout_ms + 2000;
    return requests_done && events_done ? -1 : 0;
}

static int s_on_ping(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_probe_t *probe = arg;
    if (!probe->subscribed && bus_client_publish(probe->client, probe->topic, "probe.ping",
                                                 (const uint8_t *)"p", 1) == 0)
        probe->pings_sent++;
    return 0;
}

int main(int argc, char **argv)
{
    s_options_t opt = {1, 1, 0, 5000, 16, 0, "echo", NULL};
    static struct option long_options[] = {
        {"requests", required_argument, 0, 'n'},  {"concurrency", required_argument, 0, 'c'},
        {"delay-ms", required_argument, 0, 'd'},  {"timeout-ms", required_argument, 0, 't'},
        {"service", required_argument, 0, 's'},   {"fail-code", required_argument, 0, 'f'},
        {"size", required_argument, 0, 'b'},      {"events", required_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (c) {
        case 'n': opt.requests = atol(optarg); break;
        case 'c': opt.concurrency = atol(optarg); break;
        case 'd': opt.delay_ms = atol(optarg); break;
        case 't': opt.timeout_ms = atol(optarg); break;
        case 's': opt.service = optarg; break;
        case 'f': opt.fail_code = optarg; break;
        case 'b': opt.size = atol(optarg); break;
        case 'e': opt.events = atol(optarg); break;
        default:
            printf("parley-probe --requests N --concurrency C [--delay-ms D] [--timeout-ms T] "
                   "[--service S] [--fail-code CODE] [--size BYTES] [--events N]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (opt.requests < 0 || opt.concurrency < 1 || opt.size < 0 || opt.size > (16 << 20) ||
        opt.timeout_ms < 1) {
        fprintf(stderr, "invalid arguments; see --help\n");
        return 2;
    }
    bus_client_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.link},
        {"Bus client", bus_client_config_options, bus_client_config_option_count, &config}};
    char *no_args[] = {argv[0]};
    if (config_load(tables, 2, 1, no_args, "parley-probe") != 0)
        return 2;
    plog_init("probe", PLOG_WARN);

    s_probe_t probe = {.opt = opt};
    probe.seen = calloc((size_t)opt.requests + 1, 1);
    probe.started_ms = calloc((size_t)opt.requests + 1, sizeof(int64_t));
    probe.errors = json_object();
    probe.instances = json_object();
    probe.latency = latency_histogram_new();
    uint8_t *data = calloc((size_t)opt.size + 1, 1);
    proto_echo_request_t ask = {.data = data, .data_len = (uint32_t)opt.size};
    if (opt.delay_ms) {
        ask.has_delay_ms = true;
        ask.delay_ms = (uint32_t)opt.delay_ms;
    }
    if (opt.fail_code) {
        ask.has_fail_code = true;
        proto_name_set(ask.fail_code, opt.fail_code);
    }
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_echo_request_encode(&ask, &encoded) != 0 || !(probe.payload = malloc(encoded.size))) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memcpy(probe.payload, encoded.data, encoded.size);
    probe.payload_size = encoded.size;
    proto_buffer_release(&encoded);
    free(data);
    probe.client = bus_client_new(&config, "probe");
    probe.loop = zloop_new();
    if (!probe.client || !probe.loop || bus_client_attach(probe.client, probe.loop) != 0) {
        fprintf(stderr, "cannot start the bus client\n");
        return 1;
    }
    snprintf(probe.topic, sizeof probe.topic, "probe.%d", (int)getpid());
    if (opt.events) {
        bus_client_on_event(probe.client, s_on_event, &probe);
        bus_client_subscribe(probe.client, probe.topic);
        zloop_timer(probe.loop, 50, 0, s_on_ping, &probe);
    }
    probe.begin_ms = zclock_mono();
    s_send_next(&probe);
    zloop_timer(probe.loop, 5, 0, s_on_tick, &probe);
    zloop_start(probe.loop);
    int64_t elapsed = zclock_mono() - probe.begin_ms;
    int64_t now = zclock_mono();
    json_t *report = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
        "sent", (json_int_t)probe.sent, "answered", (json_int_t)probe.answered,
        "replies", (json_int_t)probe.replies, "duplicates", (json_int_t)probe.duplicates,
        "refused", (json_int_t)probe.refused, "errors", probe.errors, "instances", probe.instances,
        "p50_us", (json_int_t)latency_histogram_percentile(probe.latency, 50, now),
        "p99_us", (json_int_t)latency_histogram_percentile(probe.latency, 99, now),
        "events_sent", (json_int_t)opt.events, "events_received",
        (json_int_t)probe.events_received, "pings_received", (json_int_t)probe.pings_received,
        "elapsed_ms", (json_int_t)elapsed, "rps",
        elapsed > 0 ? (double)probe.answered * 1000.0 / (double)elapsed : 0.0);
    char *text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text);
    free(text);
    json_decref(report);
    bus_client_destroy(&probe.client); /* before its loop */
    zloop_destroy(&probe.loop);
    latency_histogram_destroy(&probe.latency);
    free(probe.payload);
    free(probe.seen);
    free(probe.started_ms);
    zsys_shutdown();
    return 0;
}

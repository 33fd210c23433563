/*  main.c - parley-bench: arguments, then one role (see bench.h). scripts/bench.sh drives it.

      parley-bench ports N
      parley-bench broker-client [client options]          (endpoints from PARLEY_BROKER_*)
      parley-bench zmq-echo   --endpoint EP                ROUTER echo server (one hop)
      parley-bench zmq-proxy  --endpoint EP --backend EP   zmq_proxy ROUTER <-> DEALER
      parley-bench zmq-worker --endpoint EP                DEALER echo worker behind the proxy
      parley-bench zmq-client --endpoint EP [client options]
      parley-bench redis-worker --redis-port P [--batch N] [--jobs-key KEY]
      parley-bench redis-client --redis-port P [--batch N] [--jobs-key KEY] [client options]
      parley-bench jira-client --tenant T --project P [--messages N] [client options]
      parley-bench http-post --endpoint URL --messages N --jobs-key USER:TOKEN
      parley-bench jira-sink                               answers conversation.message as "jira"
      parley-bench cpu --watch LABEL:PID ...               CPU time used so far (bench_cpu_sample.c)

    client options: --inflight N --warmup-ms MS --duration-ms MS --size BYTES --timeout-ms MS
                    --watch LABEL:PID (repeatable; reports that process's CPU use) */
#include "bench.h"
#include "../common/plog.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(const bench_options_t *options);
} s_role_t;

static const s_role_t s_roles[] = {
    {"broker-client", bench_broker_client}, {"zmq-client", bench_zmq_client},
    {"zmq-echo", bench_zmq_echo},           {"zmq-worker", bench_zmq_worker},
    {"zmq-proxy", bench_zmq_proxy},         {"redis-client", bench_redis_client},
    {"redis-worker", bench_redis_worker},   {"cpu", bench_cpu_sample},
    {"jira-client", bench_jira_client},     {"http-post", bench_http_post},
    {"jira-sink", bench_jira_sink},
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: parley-bench ports N | ROLE [options]\n"
                 "roles: broker-client zmq-client zmq-echo zmq-worker zmq-proxy redis-client "
                 "redis-worker jira-client http-post jira-sink cpu\n"
                 "options: --endpoint EP --backend EP --redis-port P --batch N --jobs-key KEY\n"
                 "         --inflight N --warmup-ms MS --duration-ms MS --size BYTES\n"
                 "         --timeout-ms MS --watch LABEL:PID --tenant T --project P\n"
                 "         --messages N\n");
}

/* Parses a whole decimal number within [min, max] into *value. Returns 0 or -1. */
static int s_parse_int(const char *text, int64_t min, int64_t max, int64_t *value)
{
    char *end;
    long long parsed = strtoll(text, &end, 10);
    if (end == text || *end || parsed < min || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

/* Parses LABEL:PID into the next watch slot. Returns 0 or -1. */
static int s_parse_watch(const char *text, bench_options_t *options)
{
    const char *colon = strchr(text, ':');
    int64_t pid;
    if (!colon || colon == text || (size_t)(colon - text) >= sizeof options->watch[0].label ||
        options->watch_count == BENCH_WATCH_MAX || s_parse_int(colon + 1, 1, INT32_MAX, &pid))
        return -1;
    bench_watch_t *watch = &options->watch[options->watch_count++];
    snprintf(watch->label, sizeof watch->label, "%.*s", (int)(colon - text), text);
    watch->pid = (pid_t)pid;
    return 0;
}

/* Fills options from argv (after the role). Returns 0, or -1 after printing why. */
static int s_parse(int argc, char **argv, bench_options_t *options)
{
    static const struct option long_options[] = {
        {"endpoint", required_argument, 0, 'e'},    {"backend", required_argument, 0, 'b'},
        {"redis-port", required_argument, 0, 'r'},  {"inflight", required_argument, 0, 'i'},
        {"warmup-ms", required_argument, 0, 'w'},   {"duration-ms", required_argument, 0, 'd'},
        {"size", required_argument, 0, 's'},        {"timeout-ms", required_argument, 0, 't'},
        {"watch", required_argument, 0, 'W'},       {"batch", required_argument, 0, 'B'},
        {"jobs-key", required_argument, 0, 'J'},    {"tenant", required_argument, 0, 'T'},
        {"project", required_argument, 0, 'P'},     {"messages", required_argument, 0, 'M'},
        {0, 0, 0, 0}};
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (c) {
        case 'e': options->endpoint = optarg; break;
        case 'b': options->backend = optarg; break;
        case 'r': rc = s_parse_int(optarg, 1, 65535, &options->redis_port); break;
        case 'i': rc = s_parse_int(optarg, 1, 100000, &options->inflight); break;
        case 'w': rc = s_parse_int(optarg, 0, 600000, &options->warmup_ms); break;
        case 'd': rc = s_parse_int(optarg, 1, 600000, &options->duration_ms); break;
        case 's': rc = s_parse_int(optarg, 0, 1 << 20, &options->size); break;
        case 't': rc = s_parse_int(optarg, 1, 3600000, &options->timeout_ms); break;
        case 'W': rc = s_parse_watch(optarg, options); break;
        case 'B': rc = s_parse_int(optarg, 1, BENCH_BATCH_MAX, &options->batch); break;
        case 'J': options->jobs_key = optarg; break;
        case 'T': options->tenant = optarg; break;
        case 'P': options->project = optarg; break;
        case 'M': rc = s_parse_int(optarg, 1, 1000000, &options->messages); break;
        default: rc = -1;
        }
        if (rc != 0 && c != '?')
            fprintf(stderr, "parley-bench: invalid option value: %s\n", optarg);
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "parley-bench: unexpected argument %s\n", argv[optind]);
        rc = -1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    plog_init("bench", PLOG_WARN);
    if (strcmp(argv[1], "ports") == 0) {
        int64_t count;
        if (argc != 3 || s_parse_int(argv[2], 1, 64, &count) != 0) {
            s_usage(stderr);
            return 2;
        }
        return bench_ports((int)count);
    }
    bench_options_t options = {.inflight = 100, .warmup_ms = 500, .duration_ms = 3000,
                               .size = 32, .timeout_ms = 10000, .batch = 1,
                               .jobs_key = "parley-bench:jobs", .tenant = "bench",
                               .project = "SUP"};
    if (s_parse(argc - 1, argv + 1, &options) != 0) {
        s_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles[0]; i++)
        if (strcmp(argv[1], s_roles[i].name) == 0)
            return s_roles[i].run(&options);
    fprintf(stderr, "parley-bench: unknown role %s\n", argv[1]);
    s_usage(stderr);
    return 2;
}

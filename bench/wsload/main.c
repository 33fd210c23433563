/*  main.c - parley-wsload: a websocket load generator for room fan-out benchmarks. Parses the
    command line, raises RLIMIT_NOFILE, then hands over to wsload_run.c.

      parley-wsload idle   --sockets N [options]
      parley-wsload fanout --rooms R (--rates R1,R2,... | --search) [options]

    Output lines (stdout, one per event, key=value) are described in wsload_run.h; diagnostics
    go to stderr. Exit code 0 when it ran, 1 when setup failed for more than 1% or a signal
    cut a fanout run short, 2 for a bad command line or resources that do not fit. */
#include "wsload.h"
#include "wsload_run.h"

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#define S_SPARE_FDS 8  /* descriptors besides sockets and threads: stdio, signalfd, eventfd */
#define S_THREAD_FDS 3 /* per worker thread: epoll, eventfd, timerfd */

typedef enum { S_TEXT, S_INT, S_UINT, S_REAL, S_FLAG, S_RATES, S_PROTOCOL } s_kind_t;

/* One command-line option: where it goes, its bounds, its help. */
typedef struct {
    const char *name;
    s_kind_t kind;
    size_t offset; /* into wsload_options_t */
    double min, max;
    const char *help; /* the default in parentheses */
} s_option_t;

#define S_OPTION(name, kind, field, min, max, help)                                                \
    {                                                                                              \
        name, kind, offsetof(wsload_options_t, field), min, max, help                              \
    }

static const s_option_t s_options[] = {
    S_OPTION("host", S_TEXT, host, 0, 0, "server address (127.0.0.1)"),
    S_OPTION("port", S_INT, port, 1, 65535, "server port (required)"),
    S_OPTION("path", S_TEXT, path, 0, 0, "websocket path (/ws)"),
    S_OPTION("protocol", S_PROTOCOL, protocol, 0, 0, "relay or parley (relay)"),
    S_OPTION("source-addresses", S_INT, source_addresses, 0, 250,
             "loopback servers: bind to 127.0.0.1..N in turn, 0 = no bind (16)"),
    S_OPTION("tenant", S_TEXT, tenant, 0, 0, "parley: tenant id"),
    S_OPTION("project", S_TEXT, project, 0, 0, "parley: project key"),
    S_OPTION("project-key", S_TEXT, project_key, 0, 0, "parley: project secret (customer JWTs)"),
    S_OPTION("tenant-secret", S_TEXT, tenant_secret, 0, 0, "parley: shared secret (agent JWTs)"),
    S_OPTION("agent", S_TEXT, agent, 0, 0, "parley: agent account id for every agent socket"),
    S_OPTION("conversation-prefix", S_TEXT, conversation_prefix, 0, 0,
             "parley: conversation ids are <prefix><room> (bench-)"),
    S_OPTION("identities", S_UINT, identities, 1, 1e6, "idle parley: distinct e-mails (100)"),
    S_OPTION("sockets", S_UINT, sockets, 1, 1e6, "idle: sockets to open"),
    S_OPTION("rooms", S_UINT, rooms, 1, 5e5, "fanout: rooms of two sockets"),
    S_OPTION("threads", S_INT, threads, 1, 64, "worker threads (1)"),
    S_OPTION("connect-concurrency", S_INT, connect_concurrency, 1, 1e5,
             "sockets being set up at once (256)"),
    S_OPTION("connect-attempts", S_INT, connect_attempts, 1, 20, "tries per socket (4)"),
    S_OPTION("setup-timeout-s", S_INT, setup_timeout_s, 1, 3600, "setup gives up then (120)"),
    S_OPTION("wait-after-setup", S_FLAG, wait_after_setup, 0, 0,
             "fanout: read a line from stdin before the steps"),
    S_OPTION("rates", S_RATES, rates, 1, 1e8, "fanout: steps, msgs/s over all rooms: R1,R2,.."),
    S_OPTION("search", S_FLAG, search, 0, 0, "fanout: search the highest passing rate"),
    S_OPTION("search-start", S_REAL, search_start, 1, 1e8, "first rate of the search (5000)"),
    S_OPTION("search-factor", S_REAL, search_factor, 1.01, 10, "growth while passing (1.3)"),
    S_OPTION("search-max", S_REAL, search_max, 1, 1e8, "highest rate tried (10000000)"),
    S_OPTION("search-bisections", S_INT, search_bisections, 0, 20,
             "bisections after the first failure (3)"),
    S_OPTION("repeat", S_INT, repeat, 1, 100,
             "fanout: runs of the search, one search_best line each (1)"),
    S_OPTION("p99-ms", S_REAL, p99_ms, 0.001, 1e6, "a passing step's p99 is below (50)"),
    S_OPTION("warmup-s", S_REAL, warmup_s, 0, 3600, "per step, not measured (1)"),
    S_OPTION("step-s", S_REAL, step_s, 0.1, 3600, "per step, measured (3)"),
    S_OPTION("grace-ms", S_INT, grace_ms, 0, 60000, "per step, for stragglers (500)"),
    S_OPTION("text-bytes", S_UINT, text_bytes, 0, 65536, "message text length (100)"),
};

#define S_OPTION_COUNT (sizeof s_options / sizeof s_options[0])

static void s_usage(FILE *out)
{
    fprintf(out, "usage: parley-wsload idle --sockets N [options]\n"
                 "       parley-wsload fanout --rooms R (--rates R1,R2,.. | --search) [options]\n"
                 "options:\n");
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        fprintf(out, "  --%-20s %s%s\n", s_options[i].name,
                s_options[i].kind == S_FLAG ? "" : "VALUE  ", s_options[i].help);
}

/* Parses a decimal number within [min, max]. Returns 0, or -1 when text is not one. */
static int s_number(const char *text, double min, double max, double *value)
{
    char *end;
    double parsed = strtod(text, &end);
    if (end == text || *end || parsed < min || parsed > max)
        return -1;
    *value = parsed;
    return 0;
}

/* Stores text as the value of option into o. Returns 0, or -1 when it is not valid. */
static int s_set(const s_option_t *option, const char *text, wsload_options_t *o)
{
    void *field = (char *)o + option->offset;
    double value = 0;
    switch (option->kind) {
    case S_TEXT:
        *(const char **)field = text;
        return 0;
    case S_FLAG:
        *(bool *)field = true;
        return 0;
    case S_PROTOCOL:
        if (strcmp(text, "relay") != 0 && strcmp(text, "parley") != 0)
            return -1;
        o->protocol = text[0] == 'p' ? WSLOAD_PROTOCOL_PARLEY : WSLOAD_PROTOCOL_RELAY;
        return 0;
    case S_RATES: {
        char copy[1024];
        if (snprintf(copy, sizeof copy, "%s", text) >= (int)sizeof copy)
            return -1;
        o->rate_count = 0;
        for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
             item = strtok_r(NULL, ",", &save))
            if (o->rate_count == WSLOAD_RATES_MAX ||
                s_number(item, option->min, option->max, &o->rates[o->rate_count++]) != 0)
                return -1;
        return o->rate_count > 0 ? 0 : -1;
    }
    case S_INT:
    case S_UINT:
    case S_REAL:
        if (s_number(text, option->min, option->max, &value) != 0)
            return -1;
        if (option->kind == S_INT)
            *(int *)field = (int)value;
        else if (option->kind == S_UINT)
            *(uint32_t *)field = (uint32_t)value;
        else
            *(double *)field = value;
        return 0;
    }
    return -1;
}

/* Fills options from argv (after the mode). Returns 0, or -1 after printing why. */
static int s_parse(int argc, char **argv, wsload_options_t *o)
{
    struct option table[S_OPTION_COUNT + 2];
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        table[i] = (struct option){s_options[i].name,
                                   s_options[i].kind == S_FLAG ? no_argument : required_argument, 0,
                                   (int)i};
    table[S_OPTION_COUNT] = (struct option){"help", no_argument, 0, (int)S_OPTION_COUNT};
    table[S_OPTION_COUNT + 1] = (struct option){0, 0, 0, 0};
    int c;
    while ((c = getopt_long(argc, argv, "", table, NULL)) != -1) {
        if (c == (int)S_OPTION_COUNT) {
            s_usage(stdout);
            exit(0);
        }
        if (c < 0 || c > (int)S_OPTION_COUNT)
            return -1; /* getopt said why */
        if (s_set(&s_options[c], optarg, o) != 0) {
            fprintf(stderr, "parley-wsload: invalid value for --%s: %s\n", s_options[c].name,
                    optarg);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parley-wsload: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Checks that the options make a run. Returns 0, or -1 after printing why. */
static int s_check(const wsload_options_t *o)
{
    const char *missing = NULL;
    bool fanout = o->mode == WSLOAD_MODE_FANOUT;
    if (!o->port)
        missing = "--port";
    else if (fanout && !o->rooms)
        missing = "--rooms";
    else if (fanout && !o->rate_count && !o->search)
        missing = "--rates or --search";
    else if (!fanout && !o->sockets)
        missing = "--sockets";
    else if (o->protocol == WSLOAD_PROTOCOL_PARLEY && (!o->tenant || !o->project))
        missing = "--tenant and --project";
    else if (o->protocol == WSLOAD_PROTOCOL_PARLEY && !o->project_key)
        missing = "--project-key";
    else if (o->protocol == WSLOAD_PROTOCOL_PARLEY && fanout && (!o->tenant_secret || !o->agent))
        missing = "--tenant-secret and --agent";
    if (missing) {
        fprintf(stderr, "parley-wsload: %s missing\n", missing);
        return -1;
    }
    return 0;
}

/* Raises the soft RLIMIT_NOFILE to the hard limit. Returns 0, or -1 after saying on stderr
   that `sockets` sockets (with `threads` workers) cannot fit. */
static int s_raise_nofile(uint64_t sockets, int threads)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        perror("parley-wsload: getrlimit(RLIMIT_NOFILE)");
        return -1;
    }
    uint64_t need = sockets + S_SPARE_FDS + (uint64_t)S_THREAD_FDS * (uint64_t)threads;
    if (limit.rlim_max != RLIM_INFINITY && need > limit.rlim_max) {
        fprintf(stderr,
                "parley-wsload: %llu sockets do not fit: they need about %llu file descriptors "
                "and the hard RLIMIT_NOFILE is %llu (raise it with ulimit -Hn or LimitNOFILE, or "
                "open fewer)\n",
                (unsigned long long)sockets, (unsigned long long)need,
                (unsigned long long)limit.rlim_max);
        return -1;
    }
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        perror("parley-wsload: setrlimit(RLIMIT_NOFILE)");
        return -1;
    }
    /* Every socket to one server takes a local port from this range. */
    FILE *file = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned low, high;
    if (file && fscanf(file, "%u %u", &low, &high) == 2 && high >= low && sockets > high - low + 1)
        fprintf(stderr,
                "parley-wsload: warning: %llu sockets but only %u local ports "
                "(net.ipv4.ip_local_port_range)\n",
                (unsigned long long)sockets, high - low + 1);
    if (file)
        fclose(file);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    wsload_options_t options = {.host = "127.0.0.1",
                                .path = "/ws",
                                .conversation_prefix = "bench-",
                                .identities = 100,
                                .source_addresses = 16,
                                .threads = 1,
                                .connect_concurrency = 256,
                                .connect_attempts = 4,
                                .setup_timeout_s = 120,
                                .search_start = 5000,
                                .search_factor = 1.3,
                                .search_max = 1e7,
                                .search_bisections = 3,
                                .repeat = 1,
                                .warmup_s = 1,
                                .step_s = 3,
                                .grace_ms = 500,
                                .p99_ms = 50,
                                .text_bytes = 100,
                                .run_id =
                                    (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_usec / 1000};
    if (strcmp(argv[1], "idle") == 0) {
        options.mode = WSLOAD_MODE_IDLE;
    } else if (strcmp(argv[1], "fanout") == 0) {
        options.mode = WSLOAD_MODE_FANOUT;
    } else {
        fprintf(stderr, "parley-wsload: unknown mode %s\n", argv[1]);
        s_usage(stderr);
        return 2;
    }
    if (s_parse(argc - 1, argv + 1, &options) != 0 || s_check(&options) != 0) {
        fprintf(stderr, "parley-wsload: see parley-wsload --help\n");
        return 2;
    }
    uint64_t sockets =
        options.mode == WSLOAD_MODE_FANOUT ? 2 * (uint64_t)options.rooms : options.sockets;
    if (s_raise_nofile(sockets, options.threads) != 0)
        return 2;
    return wsload_run(&options);
}

/*  main.c - parley-echo: the echo service, for tests and benchmarks.

    Answers "echo.request" with the request's data and the answering instance's name. A request
    may ask for a delay (answered from a timer, so the worker keeps serving others meanwhile)
    or for an error code (to exercise error paths end to end). */
#include "../../common/plog.h"
#include "../../common/signals.h"
#include "../../common/worker.h"
#include "../../proto/proto.h"

#include <stdlib.h>

typedef struct {
    worker_t *worker;
    char instance[64];
    uint64_t *delayed;
} s_echo_t;

typedef struct {
    s_echo_t *echo;
    worker_request_t *request;
} s_delayed_t;

/* Replies to request with its own data; takes the request. */
static void s_answer(s_echo_t *echo, worker_request_t *request)
{
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_echo_request_t ask;
    proto_decode_error_t why;
    if (proto_echo_request_decode(&ask, payload, size, &why) != 0) {
        worker_reply_error(echo->worker, &request, "bad_request", "echo.request does not decode");
        return;
    }
    proto_echo_reply_t reply = {.data = ask.data, .data_len = ask.data_len};
    proto_name_set(reply.instance, echo->instance);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_echo_reply_encode(&reply, &encoded) != 0)
        worker_reply_error(echo->worker, &request, "internal", "out of memory");
    else
        worker_reply(echo->worker, &request, encoded.data, encoded.size);
    proto_buffer_release(&encoded);
}

static int s_on_delay_done(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_delayed_t *delayed = arg;
    s_answer(delayed->echo, delayed->request);
    free(delayed);
    return 0;
}

static void s_on_echo(worker_t *worker, worker_request_t *request, void *arg)
{
    s_echo_t *echo = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_echo_request_t ask;
    proto_decode_error_t why;
    if (proto_echo_request_decode(&ask, payload, size, &why) != 0) {
        char message[160];
        snprintf(message, sizeof message, "echo.request: field '%s' %s", why.field, why.reason);
        worker_reply_error(worker, &request, "bad_request", message);
        return;
    }
    if (ask.has_fail_code) {
        worker_reply_error(worker, &request, ask.fail_code, "the request asked for this error");
        return;
    }
    s_delayed_t *delayed;
    if (ask.has_delay_ms && ask.delay_ms > 0 && (delayed = malloc(sizeof *delayed))) {
        delayed->echo = echo;
        delayed->request = request;
        (*echo->delayed)++;
        zloop_timer(worker_loop(worker), ask.delay_ms, 1, s_on_delay_done, delayed);
        return;
    }
    s_answer(echo, request);
}

int main(int argc, char **argv)
{
    int signal_fd = signals_open();
    if (signal_fd < 0) {
        perror("signalfd");
        return 1;
    }
    worker_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.link},
        {"Worker runtime", worker_config_options, worker_config_option_count, &config},
    };
    int rc = config_load(tables, 2, argc, argv,
                         "parley-echo - the echo service (tests and benchmarks)");
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    plog_level_t level = PLOG_INFO;
    plog_level_parse(config.log_level, &level);
    plog_init("echo", level);
    config_log(tables, 2);
    srandom((unsigned)zclock_time() ^ (unsigned)getpid());

    s_echo_t echo = {0};
    echo.worker = worker_new(&config, "echo");
    if (!echo.worker || worker_on(echo.worker, "echo.request", s_on_echo, &echo) != 0) {
        plog_error("startup_failed", NULL);
        worker_destroy(&echo.worker);
        return 1;
    }
    snprintf(echo.instance, sizeof echo.instance, "%s", worker_instance(echo.worker));
    echo.delayed = worker_counter(echo.worker, "delayed_replies");
    rc = worker_run(echo.worker, signal_fd);
    worker_destroy(&echo.worker);
    zsys_shutdown();
    return rc;
}

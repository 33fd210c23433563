/*  bench_zmq_client.c - `parley-bench zmq-client`: the load generator for the raw ZeroMQ
    baselines (zmq-echo, or zmq-proxy with a zmq-worker behind it).

    A DEALER connected to the endpoint keeps options->inflight messages in flight; each carries
    the echo request bytes with its send time in the first 8 bytes, and every answer of the
    right size sends the next. Single-threaded apart from libzmq's I/O thread. */
#include "bench.h"
#include "bench_run.h"
#include "../common/plog.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_BATCH 1024 /* answers taken per wake-up before ticking */
#define S_POLL_MS 5

/* Sends payload with the current time in its first 8 bytes. Returns 0, or -1 (logged). */
static int s_send(void *socket, uint8_t *payload, size_t size)
{
    int64_t now = bench_now_us();
    memcpy(payload, &now, sizeof now);
    if (zmq_send(socket, payload, size, 0) < 0) {
        plog_error("zmq_send_failed", "errno=%d error=\"%s\"", errno, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Takes the answers waiting on socket and sends one request for each. Returns 0, or -1 when
   sending failed. */
static int s_take_answers(void *socket, bench_run_t *run, uint8_t *payload, size_t size)
{
    zmq_msg_t answer;
    zmq_msg_init(&answer);
    int rc = 0;
    for (int i = 0; i < S_BATCH && rc == 0; i++) {
        if (zmq_msg_recv(&answer, socket, ZMQ_DONTWAIT) < 0)
            break;
        int64_t now = bench_now_us(), sent;
        if (zmq_msg_size(&answer) == size && !zmq_msg_more(&answer)) {
            memcpy(&sent, zmq_msg_data(&answer), sizeof sent);
            bench_run_answer(run, sent, now);
        } else {
            bench_run_error(run);
            bool more = zmq_msg_more(&answer);
            while (more) /* the rest of a malformed answer */
                more = zmq_msg_recv(&answer, socket, 0) >= 0 && zmq_msg_more(&answer);
        }
        rc = s_send(socket, payload, size);
    }
    zmq_msg_close(&answer);
    return rc;
}

int bench_zmq_client(const bench_options_t *options)
{
    if (!options->endpoint) {
        plog_error("setup_failed", "reason=no_endpoint");
        return 1;
    }
    int rc = 1;
    size_t size = 0;
    void *context = zmq_ctx_new(), *socket = NULL;
    uint8_t *payload = bench_payload_new(options->size, &size);
    bench_run_t *run = bench_run_new(options);
    if (!context || !payload || !run || !(socket = zmq_socket(context, ZMQ_DEALER)))
        goto fail;
    int linger = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(socket, options->endpoint) != 0) {
        plog_error("zmq_connect_failed", "endpoint=%s errno=%d", options->endpoint, errno);
        goto fail;
    }
    for (int64_t i = 0; i < options->inflight; i++)
        if (s_send(socket, payload, size) != 0)
            goto fail;
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    while (!bench_run_tick(run, bench_now_us())) {
        if (zmq_poll(&item, 1, S_POLL_MS) < 0 && errno != EINTR) {
            plog_error("zmq_poll_failed", "errno=%d", errno);
            goto fail;
        }
        if ((item.revents & ZMQ_POLLIN) && s_take_answers(socket, run, payload, size) != 0)
            goto fail;
    }
    if (bench_run_report(run) == 0)
        rc = 0;
fail:
    if (socket)
        zmq_close(socket);
    if (context)
        zmq_ctx_term(context);
    bench_run_destroy(&run);
    free(payload);
    return rc;
}

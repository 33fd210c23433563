/*  bench_sink.c - `parley-bench jira-sink`: stands in for the jira worker in the gateway's
    fan-out benchmark, once the rooms are set up.

    Jira Cloud takes comments at a few per second per tenant, far below the rates the fan-out
    benchmark drives through the edge, and the jira worker's own rate is measured on its own
    (scripts/bench-jira.sh). So after the real jira worker has authenticated the sockets and
    opened the conversations, the benchmark stops it and starts this sink under the same
    service name: it answers conversation.message exactly as the jira worker's wire contract
    says (a conversation.persisted reply, and the conversation.persisted event on the
    conversation's topic), without writing anything anywhere. Every other request gets
    `unavailable`. Runs until SIGTERM. */
#include "bench.h"
#include "../common/config.h"
#include "../common/plog.h"
#include "../common/signals.h"
#include "../common/worker.h"
#include "../proto/proto.h"

#include <stdio.h>

typedef struct {
    worker_t *worker;
    uint64_t comments; /* the next comment id */
} s_sink_t;

static void s_on_message(worker_t *worker, worker_request_t *request, void *arg)
{
    s_sink_t *sink = arg;
    size_t size;
    const uint8_t *payload = worker_request_payload(request, &size);
    proto_conversation_message_t message;
    proto_decode_error_t why;
    if (proto_conversation_message_decode(&message, payload, size, &why) != 0) {
        worker_reply_error(worker, &request, "bad_request", "conversation.message does not decode");
        return;
    }
    proto_conversation_persisted_t persisted = {.duplicate = false};
    proto_name_set(persisted.issue, message.issue);
    proto_name_set(persisted.message, message.message);
    snprintf(persisted.comment, sizeof persisted.comment, "%llu",
             (unsigned long long)++sink->comments);
    char topic[2 * PROTO_NAME_MAX + 8];
    snprintf(topic, sizeof topic, "conv.%s.%s", message.tenant, message.issue);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    if (proto_conversation_persisted_encode(&persisted, &encoded) != 0) {
        worker_reply_error(worker, &request, "internal", "out of memory");
    } else {
        worker_reply(worker, &request, encoded.data, encoded.size);
        worker_publish_as(worker, message.has_origin ? message.origin : NULL, topic,
                          "conversation.persisted", encoded.data, encoded.size);
    }
    proto_buffer_release(&encoded);
}

static void s_on_other(worker_t *worker, worker_request_t *request, void *arg)
{
    (void)arg;
    worker_reply_error(worker, &request, "unavailable", "the benchmark's sink only persists");
}

int bench_jira_sink(const bench_options_t *options)
{
    (void)options;
    int signal_fd = signals_open();
    worker_config_t config;
    config_table_t tables[] = {
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.link},
        {"Worker runtime", worker_config_options, worker_config_option_count, &config},
    };
    char *no_args[] = {"parley-bench", NULL};
    if (signal_fd < 0 || config_load(tables, 2, 1, no_args, "parley-bench jira-sink") != 0)
        return 1;
    s_sink_t sink = {0};
    sink.worker = worker_new(&config, "jira");
    if (!sink.worker || worker_on(sink.worker, "conversation.message", s_on_message, &sink) != 0 ||
        worker_on(sink.worker, "session.authenticate", s_on_other, &sink) != 0 ||
        worker_on(sink.worker, "conversation.start", s_on_other, &sink) != 0 ||
        worker_on(sink.worker, "conversation.transcript", s_on_other, &sink) != 0) {
        plog_error("startup_failed", NULL);
        worker_destroy(&sink.worker);
        return 1;
    }
    int rc = worker_run(sink.worker, signal_fd);
    worker_destroy(&sink.worker);
    return rc;
}

/*  broker_stats.c - /stats (JSON via jansson) and /metrics (Prometheus text); see
    broker_stats.h. Reads the broker's state on its own thread; changes nothing. */
#include "broker_stats.h"
#include "broker_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>

int broker_stats_healthy(broker_t *broker)
{
    return !broker->draining;
}

static size_t s_busy(broker_service_t *service, broker_t *broker)
{
    size_t busy = 0;
    for (broker_peer_t *p = zhashx_first(broker->peers); p; p = zhashx_next(broker->peers))
        if (p->service == service && zlistx_size(p->inflight) > 0)
            busy++;
    return busy;
}

static json_t *s_counters_json(const broker_peer_t *peer)
{
    json_t *counters = json_object();
    for (uint32_t i = 0; i < peer->counter_count; i++)
        json_object_set_new(counters, peer->counters[i].name,
                            json_integer((json_int_t)peer->counters[i].value));
    return counters;
}

static json_t *s_peer_json(const broker_peer_t *peer, int64_t now)
{
    json_t *item = json_pack("{s:s, s:s, s:I}", "peer", peer->key, "instance", peer->instance,
                             "connected_s", (json_int_t)((now - peer->connected_at_ms) / 1000));
    if (peer->kind == PEER_WORKER) {
        json_object_set_new(item, "inflight", json_integer((json_int_t)zlistx_size(peer->inflight)));
        json_object_set_new(item, "capacity", json_integer(peer->capacity));
        json_object_set_new(item, "draining", json_boolean(peer->draining));
        json_object_set_new(item, "requests_done", json_integer((json_int_t)peer->requests_done));
    } else
        json_object_set_new(item, "kind", json_string(*peer->role ? peer->role : "client"));
    json_object_set_new(item, "counters", s_counters_json(peer));
    return item;
}

char *broker_stats_json(broker_t *broker)
{
    int64_t now = zclock_mono();
    json_t *root = json_object();
    json_object_set_new(root, "uptime_s", json_integer((json_int_t)((now - broker->started_ms) / 1000)));
    json_object_set_new(root, "started_at_ms", json_integer((json_int_t)broker->started_wall_ms));
    json_object_set_new(root, "draining", json_boolean(broker->draining));
    json_object_set_new(root, "requests_held", json_integer((json_int_t)zhashx_size(broker->requests)));

    json_t *rejected = json_object();
    for (int r = 1; r < PROTO_REJECT_KINDS; r++)
        json_object_set_new(rejected, proto_reject_name((proto_reject_t)r),
                            json_integer((json_int_t)broker->counters.rejected[r]));
    const broker_counters_t *c = &broker->counters;
    json_object_set_new(root, "broker", json_pack(
        "{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rejected", rejected,
        "undeliverable", (json_int_t)c->undeliverable, "late_replies", (json_int_t)c->late_replies,
        "peers_expired", (json_int_t)c->peers_expired, "no_service", (json_int_t)c->no_service,
        "requests_refused_draining", (json_int_t)c->requests_refused_draining,
        "http_requests", (json_int_t)c->http_requests, "http_rejected", (json_int_t)c->http_rejected,
        "log_suppressed", (json_int_t)c->log_suppressed));
    json_object_set_new(root, "events", json_pack(
        "{s:I, s:I, s:I, s:I}", "forwarded", (json_int_t)c->events_forwarded,
        "rejected", (json_int_t)c->events_rejected, "subscriptions", (json_int_t)c->subscriptions,
        "unsubscriptions", (json_int_t)c->unsubscriptions));

    json_t *services = json_object();
    for (broker_service_t *s = zhashx_first(broker->services); s;
         s = zhashx_next(broker->services)) {
        json_t *latency = json_pack(
            "{s:I, s:I, s:I, s:I}",
            "p50", (json_int_t)latency_histogram_percentile(s->latency, 50, now),
            "p95", (json_int_t)latency_histogram_percentile(s->latency, 95, now),
            "p99", (json_int_t)latency_histogram_percentile(s->latency, 99, now),
            "window_s", (json_int_t)(LATENCY_WINDOW_MS / 1000));
        json_t *service = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:[]}",
            "replicas", (json_int_t)s->replicas, "busy", (json_int_t)s_busy(s, broker),
            "queue", (json_int_t)broker_service_queued(s), "inflight", (json_int_t)s->inflight,
            "requests", (json_int_t)s->requests, "replies", (json_int_t)s->replies,
            "errors", (json_int_t)s->errors, "timeouts", (json_int_t)s->timeouts,
            "overloaded", (json_int_t)s->overloaded, "redispatches", (json_int_t)s->redispatches,
            "no_service", (json_int_t)s->no_service, "latency_us", latency, "workers");
        json_object_set_new(services, s->name, service);
    }
    json_t *clients = json_array();
    for (broker_peer_t *p = zhashx_first(broker->peers); p; p = zhashx_next(broker->peers)) {
        if (p->kind == PEER_WORKER)
            json_array_append_new(json_object_get(json_object_get(services, p->service->name),
                                                  "workers"),
                                  s_peer_json(p, now));
        else
            json_array_append_new(clients, s_peer_json(p, now));
    }
    json_object_set_new(root, "services", services);
    json_object_set_new(root, "clients", json_pack("{s:I, s:o}", "connected",
                                                   (json_int_t)broker->clients, "list", clients));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

/* Writes a label value with Prometheus escaping (backslash, quote, newline). */
static void s_label(FILE *out, const char *value)
{
    for (; *value; value++) {
        if (*value == '\\' || *value == '"')
            fputc('\\', out);
        if (*value == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*value, out);
    }
}

static void s_family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample per service of a uint64 member. */
#define S_SERVICE_SAMPLES(metric, kind, help_text, expr)                                       \
    do {                                                                                         \
        s_family(out, metric, kind, help_text);                                                  \
        for (broker_service_t *s = zhashx_first(broker->services); s;                            \
             s = zhashx_next(broker->services)) {                                                \
            fprintf(out, "%s{service=\"", metric);                                               \
            s_label(out, s->name);                                                               \
            fprintf(out, "\"} %" PRIu64 "\n", (uint64_t)(expr));                                 \
        }                                                                                        \
    } while (0)

char *broker_stats_prometheus(broker_t *broker)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out)
        return NULL;
    int64_t now = zclock_mono();
    const broker_counters_t *c = &broker->counters;
    s_family(out, "parley_uptime_seconds", "gauge", "Seconds since the broker started.");
    fprintf(out, "parley_uptime_seconds %.3f\n", (double)(now - broker->started_ms) / 1000.0);
    s_family(out, "parley_clients_connected", "gauge", "Clients (gateways) heard from recently.");
    fprintf(out, "parley_clients_connected %zu\n", broker->clients);
    s_family(out, "parley_requests_held", "gauge", "Requests queued or in flight.");
    fprintf(out, "parley_requests_held %zu\n", zhashx_size(broker->requests));
    s_family(out, "parley_broker_rejected_total", "counter", "Bad messages dropped, by reason.");
    for (int r = 1; r < PROTO_REJECT_KINDS; r++)
        fprintf(out, "parley_broker_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                proto_reject_name((proto_reject_t)r), c->rejected[r]);
    s_family(out, "parley_broker_undeliverable_total", "counter",
             "Answers whose client had gone.");
    fprintf(out, "parley_broker_undeliverable_total %" PRIu64 "\n", c->undeliverable);
    s_family(out, "parley_broker_late_replies_total", "counter",
             "Replies to requests already answered or unknown.");
    fprintf(out, "parley_broker_late_replies_total %" PRIu64 "\n", c->late_replies);
    s_family(out, "parley_broker_peers_expired_total", "counter",
             "Peers dropped after missing heartbeats.");
    fprintf(out, "parley_broker_peers_expired_total %" PRIu64 "\n", c->peers_expired);
    s_family(out, "parley_broker_unknown_service_total", "counter",
             "Requests for services never seen.");
    fprintf(out, "parley_broker_unknown_service_total %" PRIu64 "\n", c->no_service);
    s_family(out, "parley_events_forwarded_total", "counter", "Events forwarded to subscribers.");
    fprintf(out, "parley_events_forwarded_total %" PRIu64 "\n", c->events_forwarded);
    s_family(out, "parley_events_rejected_total", "counter", "Malformed events dropped.");
    fprintf(out, "parley_events_rejected_total %" PRIu64 "\n", c->events_rejected);
    s_family(out, "parley_event_subscriptions_total", "counter", "Subscriptions forwarded.");
    fprintf(out, "parley_event_subscriptions_total %" PRIu64 "\n", c->subscriptions);

    S_SERVICE_SAMPLES("parley_service_replicas", "gauge", "Workers ready.", s->replicas);
    S_SERVICE_SAMPLES("parley_service_busy_replicas", "gauge", "Workers holding a request.",
                      s_busy(s, broker));
    S_SERVICE_SAMPLES("parley_service_queue_depth", "gauge", "Requests waiting.",
                      broker_service_queued(s));
    S_SERVICE_SAMPLES("parley_service_inflight", "gauge", "Requests at workers.", s->inflight);
    S_SERVICE_SAMPLES("parley_service_requests_total", "counter", "Requests received.",
                      s->requests);
    S_SERVICE_SAMPLES("parley_service_replies_total", "counter", "Replies delivered.",
                      s->replies);
    S_SERVICE_SAMPLES("parley_service_errors_total", "counter",
                      "Requests answered with an error.", s->errors);
    S_SERVICE_SAMPLES("parley_service_timeouts_total", "counter", "Requests past deadline.",
                      s->timeouts);
    S_SERVICE_SAMPLES("parley_service_overloaded_total", "counter",
                      "Requests refused: queue full.", s->overloaded);
    S_SERVICE_SAMPLES("parley_service_redispatches_total", "counter",
                      "Requests re-sent after their worker died.", s->redispatches);
    S_SERVICE_SAMPLES("parley_service_no_service_total", "counter",
                      "Requests refused: no replica.", s->no_service);

    s_family(out, "parley_service_latency_seconds", "summary",
             "Broker-side request latency; quantiles over the last 60 s.");
    for (broker_service_t *s = zhashx_first(broker->services); s;
         s = zhashx_next(broker->services)) {
        static const double quantiles[] = {0.5, 0.95, 0.99};
        for (int q = 0; q < 3; q++) {
            fprintf(out, "parley_service_latency_seconds{service=\"");
            s_label(out, s->name);
            fprintf(out, "\",quantile=\"%g\"} %.6f\n", quantiles[q],
                    (double)latency_histogram_percentile(s->latency, quantiles[q] * 100, now) /
                        1e6);
        }
        fprintf(out, "parley_service_latency_seconds_sum{service=\"");
        s_label(out, s->name);
        fprintf(out, "\"} %.6f\n", (double)latency_histogram_sum_us(s->latency) / 1e6);
        fprintf(out, "parley_service_latency_seconds_count{service=\"");
        s_label(out, s->name);
        fprintf(out, "\"} %" PRIu64 "\n", latency_histogram_count(s->latency));
    }

    s_family(out, "parley_peer_counter", "untyped",
             "Counters that workers and gateways report in their heartbeats.");
    for (broker_peer_t *p = zhashx_first(broker->peers); p; p = zhashx_next(broker->peers))
        for (uint32_t i = 0; i < p->counter_count; i++) {
            fprintf(out, "parley_peer_counter{role=\"");
            s_label(out, p->kind == PEER_WORKER ? p->service->name : (*p->role ? p->role : "client"));
            fprintf(out, "\",instance=\"");
            s_label(out, p->instance);
            fprintf(out, "\",counter=\"");
            s_label(out, p->counters[i].name);
            fprintf(out, "\"} %" PRIu64 "\n", p->counters[i].value);
        }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/*  main.c - parley-gateway: Parley's edge. libwebsockets serves HTTP and the websockets on
    the main thread, on a libev loop of ours (epoll: lws's default poll() walks every socket
    on every turn, which tens of thousands of sockets cannot afford); the bus thread
    (gateway_bus) talks to the broker. SIGTERM or SIGINT: stop accepting, close the sockets
    with 1001, let the bus thread cancel what is out, exit. */
#include "../common/plog.h"
#include "../common/signals.h"
#include "gateway_bus.h"
#include "gateway_config.h"
#include "gateway_http.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void s_lws_log(int level, const char *line)
{
    size_t length = strlen(line);
    while (length && (line[length - 1] == '\n' || line[length - 1] == '\r'))
        length--;
    if (level & LLL_ERR)
        plog_error("lws", "message=\"%.*s\"", (int)length, line);
    else
        plog_warn("lws", "message=\"%.*s\"", (int)length, line);
}

int main(int argc, char **argv)
{
    int signal_fd = signals_open();
    if (signal_fd < 0) {
        perror("signalfd");
        return 1;
    }
    gateway_config_t config;
    config_table_t tables[] = {
        {"Gateway", gateway_config_options, gateway_config_option_count, &config},
        {"Broker connection", bus_link_config_options, bus_link_config_option_count,
         &config.bus.link},
        {"Bus client", bus_client_config_options, bus_client_config_option_count, &config.bus},
    };
    size_t table_count = sizeof tables / sizeof tables[0];
    int rc = config_load(tables, table_count, argc, argv,
                         "parley-gateway - Parley's edge: HTTP routes for Jira (and websockets)");
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    plog_level_t level = PLOG_INFO;
    plog_level_parse(config.log_level, &level);
    plog_init("gateway", level);
    config_log(tables, table_count);
    lws_set_log_level(LLL_ERR | LLL_WARN, s_lws_log);

    gateway_http_t *http = gateway_http_new(&config, NULL);
    gateway_ws_t *ws = gateway_ws_new(&config);
    if (http && ws)
        gateway_http_set_ws(http, ws);
    struct lws_protocols protocols[] = {
        /* lws gives every websocket its own rx buffer of rx_buffer_size: kept small, since
           most sockets sit idle (longer frames arrive in pieces and are gathered by
           gateway_ws); a frame we write goes out in one send of up to tx_packet_size */
        {"http", gateway_http_callback, gateway_http_session_size(), 1024, 0, NULL, 65536},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)config.listen_port;
    info.iface = config.listen_host;
    info.protocols = protocols;
    info.user = http;
    info.vhost_name = "parley";
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    void *foreign_loops[1] = {loop};
    info.foreign_loops = foreign_loops; /* ours: we run it a turn at a time, below */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    info.max_http_header_data = 16384; /* JWTs in Authorization; more closes the connection */
    lws_retry_bo_t keepalive = {.secs_since_valid_ping = (uint16_t)config.ping_s,
                                .secs_since_valid_hangup = (uint16_t)config.idle_s};
    info.retry_and_idle_policy = &keepalive;
    struct lws_context *context = http && ws && loop ? lws_create_context(&info) : NULL;
    gateway_bus_t *bus =
        context ? gateway_bus_new(&config.bus, config.bus_batch_ms, context, signal_fd) : NULL;
    if (!bus) {
        plog_error("startup_failed", "reason=\"cannot listen on %s:%lld or reach the bus\"",
                   config.listen_host, (long long)config.listen_port);
        rc = 1;
    } else {
        gateway_http_set_bus(http, bus);
        gateway_ws_set_bus(ws, bus);
        gateway_ws_start(ws, context);
        plog_info("listening", "address=%s:%lld", config.listen_host,
                  (long long)config.listen_port);
        while (!gateway_http_stopping(http)) {
            ev_run(loop, EVRUN_ONCE);
            gateway_ws_flush(ws);
            gateway_bus_flush(bus);
        }
        /* drain: sockets are told to reconnect elsewhere, and get time to go */
        plog_info("stopping", "sockets=%zu", gateway_ws_count(ws));
        gateway_ws_drain(ws);
        int64_t until = zclock_mono() + config.drain_ms;
        while (gateway_ws_count(ws) > 0 && zclock_mono() < until) {
            ev_run(loop, EVRUN_ONCE);
            gateway_ws_flush(ws);
            gateway_bus_flush(bus);
        }
    }
    gateway_bus_destroy(&bus); /* first: its thread wakes the lws context */
    if (http)
        gateway_http_set_bus(http, NULL);
    if (ws)
        gateway_ws_set_bus(ws, NULL);
    if (context)
        lws_context_destroy(context);
    if (loop)
        ev_loop_destroy(loop);
    gateway_http_destroy(&http);
    gateway_ws_destroy(&ws);
    zsys_shutdown();
    return rc;
}

/*  gateway_config.c - the gateway's own options (see common/config.h). */
#include "gateway_config.h"

#define T gateway_config_t
const config_option_t gateway_config_options[] = {
    CONFIG_STR_OPTION("PARLEY_GATEWAY_HOST", T, listen_host, "127.0.0.1",
                      "address the gateway listens on"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_PORT", T, listen_port, "8080", 1, 65535,
                      "port the gateway listens on (HTTP and websockets)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_HTTP_BODY_MAX", T, http_body_max, "1048576", 1024,
                      16777216, "largest HTTP request body accepted (bytes); more gets 413"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_REQUEST_TIMEOUT_MS", T, request_timeout_ms, "15000", 100,
                      600000, "deadline of a request the gateway makes to a worker (ms)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_FRAME_MAX", T, frame_max, "65536", 256, 16777216,
                      "largest websocket message a client may send (bytes); more closes with 1009"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_OUTBOX_MAX", T, outbox_max, "1000", 1, 1000000,
                      "frames queued for a client that reads too slowly before it is cut off"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_PRESENCE_HEARTBEAT_MS", T, presence_heartbeat_ms, "20000",
                      100, 3600000, "how often sockets' last seen is sent to presence (ms)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_MAX_CONNECTIONS", T, max_connections, "20000", 1,
                      10000000, "websockets at once; more are closed with 1013 (try later)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_PING_S", T, ping_s, "20", 1, 3600,
                      "a websocket quiet this long gets a ping (s)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_IDLE_S", T, idle_s, "60", 2, 86400,
                      "a websocket that answers nothing this long is closed (s)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_RATE_PER_S", T, rate_per_s, "20", 1, 100000,
                      "frames per second a client may send, on average"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_RATE_BURST", T, rate_burst, "40", 1, 100000,
                      "frames a client may send at once above that rate"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_DRAIN_MS", T, drain_ms, "5000", 0, 600000,
                      "on SIGTERM, time sockets get to close (1001, reconnect elsewhere)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_STATUS_DELAY_MS", T, status_delay_ms, "100", 0, 5000,
                      "ack and persisted frames wait up to this long to leave with the "
                      "socket's next frame, so that a busy socket gets fewer writes (0: at once)"),
    CONFIG_INT_OPTION("PARLEY_GATEWAY_BUS_BATCH_MS", T, bus_batch_ms, "2", 0, 100,
                      "requests and events wait up to this long in the gateway to go to the "
                      "broker together, so that every hop handles bursts (0: at once)"),
    CONFIG_STR_OPTION("PARLEY_GATEWAY_INSTANCE", T, instance, "",
                      "this gateway's name for presence and logs (default gw-<host>-<pid>)"),
    CONFIG_STR_OPTION("PARLEY_APP_KEY", T, app_key, "parley-chat",
                      "Atlassian Connect app key (in the descriptor)"),
    CONFIG_STR_OPTION("PARLEY_APP_NAME", T, app_name, "Parley chat", "the app's name in Jira"),
    CONFIG_STR_OPTION("PARLEY_APP_BASE_URL", T, app_base_url, "http://127.0.0.1:8080",
                      "Parley's public base URL, as Jira reaches the gateway"),
    CONFIG_STR_OPTION("PARLEY_GATEWAY_STATIC_DIR", T, static_dir, "gateway/static",
                      "directory of the static files served at / (widget.js, demo.html, "
                      "agent.html); relative to the working directory; \"\" turns them off"),
    CONFIG_STR_OPTION("PARLEY_LOG_LEVEL", T, log_level, "info", "debug, info, warn or error"),
};
#undef T
const size_t gateway_config_option_count =
    sizeof gateway_config_options / sizeof gateway_config_options[0];

/*  gateway_config.h - the gateway's configuration: its own options plus the bus client's. */
#ifndef GATEWAY_CONFIG_H
#define GATEWAY_CONFIG_H

#include "../common/bus_client.h"

typedef struct {
    bus_client_config_t bus;
    char listen_host[64];          /* interface address to listen on */
    int64_t listen_port;
    int64_t http_body_max;         /* bytes of an HTTP request body */
    int64_t request_timeout_ms;    /* deadline of a request to a worker */
    int64_t frame_max;             /* bytes of one websocket message from a client */
    int64_t outbox_max;            /* frames waiting for a slow client before it is cut off */
    int64_t presence_heartbeat_ms; /* how often open sockets' last seen goes to presence */
    int64_t max_connections;       /* websockets at once; more are refused (1013) */
    int64_t ping_s, idle_s;        /* ping an idle socket after ping_s; close it after idle_s */
    int64_t rate_per_s, rate_burst; /* frames a client may send: steady rate and burst */
    int64_t drain_ms;              /* on SIGTERM, time given to sockets to close */
    int64_t status_delay_ms;       /* ack/persisted frames wait this long for company (0: none) */
    int64_t bus_batch_ms;          /* requests and events wait this long to go out together */
    char instance[64];             /* this gateway's name (presence, logs); "" = gw-<host>-<pid> */
    char app_key[64];              /* Atlassian Connect app key */
    char app_name[64];
    char app_base_url[256];        /* public base URL, in the Connect descriptor */
    char static_dir[512];          /* static files (widget, demo, agent console); "" = none */
    char log_level[16];
} gateway_config_t;

extern const config_option_t gateway_config_options[];
extern const size_t gateway_config_option_count;

#endif

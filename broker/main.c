/*  main.c - parley-broker: configuration, wiring, signals and graceful stop.

    Runs one zloop. SIGTERM or SIGINT starts a drain (see broker_drain); once drained, every
    peer is told DISCONNECT and the process exits 0. */
#include "broker.h"
#include "../common/plog.h"
#include "../common/signals.h"

#include <stdlib.h>

typedef struct {
    broker_t *broker;
    int signal_fd;
} s_main_t;

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    (void)item;
    s_main_t *main_state = arg;
    int signo = signals_read(main_state->signal_fd);
    if (signo) {
        plog_info("signal_received", "signal=%d action=drain", signo);
        broker_drain(main_state->broker);
    }
    return broker_drained(main_state->broker) ? -1 : 0;
}

static int s_on_drain_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_main_t *main_state = arg;
    return broker_drained(main_state->broker) ? -1 : 0;
}

int main(int argc, char **argv)
{
    int signal_fd = signals_open();
    if (signal_fd < 0) {
        perror("signalfd");
        return 1;
    }
    broker_config_t config;
    config_table_t tables[] = {
        {"Broker", broker_config_options, broker_config_option_count, &config},
    };
    int rc = config_load(tables, 1, argc, argv,
                         "parley-broker - routes requests between Parley gateways and workers, "
                         "forwards events, serves /stats");
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    plog_level_t level = PLOG_INFO;
    plog_level_parse(config.log_level, &level);
    plog_init("broker", level);
    config_log(tables, 1);
    srandom((unsigned)zclock_time());

    broker_t *broker = broker_new(&config);
    if (!broker)
        return 1;
    zloop_t *loop = zloop_new();
    s_main_t main_state = {broker, signal_fd};
    zmq_pollitem_t signal_item = {NULL, signal_fd, ZMQ_POLLIN, 0};
    if (!loop || broker_attach(broker, loop) != 0 ||
        zloop_poller(loop, &signal_item, s_on_signal, &main_state) != 0 ||
        zloop_timer(loop, 50, 0, s_on_drain_check, &main_state) < 0) {
        plog_error("loop_setup_failed", NULL);
        zloop_destroy(&loop);
        broker_destroy(&broker);
        return 1;
    }
    zloop_start(loop);
    broker_say_goodbye(broker);
    zloop_destroy(&loop);
    broker_destroy(&broker);
    zsys_shutdown();
    return 0;
}

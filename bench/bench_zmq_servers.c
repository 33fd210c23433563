/*  bench_zmq_servers.c - the raw ZeroMQ baselines' servers: no Parley code on the path.

      zmq-echo    a ROUTER bound to the endpoint that sends every message straight back
                  (one hop: client DEALER -> ROUTER).
      zmq-proxy   zmq_proxy() between a ROUTER bound to the endpoint (clients) and a DEALER bound
                  to the backend (workers): the two-hop path a brokered request takes.
      zmq-worker  a DEALER connected to the proxy's backend that sends every message straight
                  back, routing frame included.

    Each runs in its own process and stops on SIGTERM or SIGINT (common/signals.h). The echo
    loops are single-threaded; the proxy runs zmq_proxy() on a second thread while the main
    thread waits for the signal, then shuts the context down to stop it. */
#include "bench.h"
#include "../common/plog.h"
#include "../common/signals.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <zmq.h>

#define S_BATCH 1024 /* messages echoed per wake-up before polling again */

/* Opens a socket of type with linger 0 and binds or connects it. Returns it, or NULL (logged). */
static void *s_socket(void *context, int type, const char *endpoint, bool bind)
{
    void *socket = zmq_socket(context, type);
    if (!socket) {
        plog_error("zmq_socket_failed", "errno=%d error=\"%s\"", errno, zmq_strerror(errno));
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    if ((bind ? zmq_bind(socket, endpoint) : zmq_connect(socket, endpoint)) != 0) {
        plog_error(bind ? "zmq_bind_failed" : "zmq_connect_failed",
                   "endpoint=%s errno=%d error=\"%s\"", endpoint, errno, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    return socket;
}

/* Receives one whole message without waiting and sends its frames back in order. Returns 0, or
   -1 when nothing was waiting or the socket failed. */
static int s_echo_one(void *socket)
{
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return -1;
    }
    while (true) {
        bool more = zmq_msg_more(&frame);
        if (zmq_msg_send(&frame, socket, more ? ZMQ_SNDMORE : 0) < 0) {
            zmq_msg_close(&frame);
            return -1;
        }
        if (!more)
            break;
        if (zmq_msg_recv(&frame, socket, 0) < 0) { /* the rest arrived with the first frame */
            zmq_msg_close(&frame);
            return -1;
        }
    }
    zmq_msg_close(&frame);
    return 0;
}

/* Echoes until a signal arrives on signal_fd. Returns 0, or 1 when polling failed. */
static int s_echo_loop(void *socket, int signal_fd)
{
    zmq_pollitem_t items[] = {{socket, 0, ZMQ_POLLIN, 0}, {NULL, signal_fd, ZMQ_POLLIN, 0}};
    while (true) {
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            plog_error("zmq_poll_failed", "errno=%d error=\"%s\"", errno, zmq_strerror(errno));
            return 1;
        }
        if ((items[1].revents & ZMQ_POLLIN) && signals_read(signal_fd))
            return 0;
        if (items[0].revents & ZMQ_POLLIN)
            for (int i = 0; i < S_BATCH; i++)
                if (s_echo_one(socket) != 0)
                    break;
    }
}

/* Runs an echo server of socket type on endpoint until a signal. */
static int s_echo_server(const bench_options_t *options, int type, bool bind)
{
    int signal_fd = signals_open(); /* before libzmq starts its threads */
    if (signal_fd < 0 || !options->endpoint) {
        plog_error("setup_failed", "reason=%s", signal_fd < 0 ? "signalfd" : "no_endpoint");
        return 1;
    }
    void *context = zmq_ctx_new();
    void *socket = context ? s_socket(context, type, options->endpoint, bind) : NULL;
    int rc = socket ? s_echo_loop(socket, signal_fd) : 1;
    if (socket)
        zmq_close(socket);
    if (context)
        zmq_ctx_term(context);
    return rc;
}

int bench_zmq_echo(const bench_options_t *options)
{
    return s_echo_server(options, ZMQ_ROUTER, true);
}

int bench_zmq_worker(const bench_options_t *options)
{
    return s_echo_server(options, ZMQ_DEALER, false);
}

typedef struct {
    void *frontend, *backend; /* owned by the proxy thread once it starts */
} s_proxy_t;

static void *s_proxy_thread(void *arg)
{
    s_proxy_t *proxy = arg;
    zmq_proxy(proxy->frontend, proxy->backend, NULL); /* returns when the context shuts down */
    zmq_close(proxy->frontend);
    zmq_close(proxy->backend);
    return NULL;
}

int bench_zmq_proxy(const bench_options_t *options)
{
    int signal_fd = signals_open(); /* before any thread, so that all of them block it */
    if (signal_fd < 0 || !options->endpoint || !options->backend) {
        plog_error("setup_failed", "reason=%s", signal_fd < 0 ? "signalfd" : "no_endpoint");
        return 1;
    }
    void *context = zmq_ctx_new();
    if (!context)
        return 1;
    s_proxy_t proxy = {s_socket(context, ZMQ_ROUTER, options->endpoint, true),
                       s_socket(context, ZMQ_DEALER, options->backend, true)};
    pthread_t thread;
    if (!proxy.frontend || !proxy.backend ||
        pthread_create(&thread, NULL, s_proxy_thread, &proxy) != 0) {
        if (proxy.frontend)
            zmq_close(proxy.frontend);
        if (proxy.backend)
            zmq_close(proxy.backend);
        zmq_ctx_term(context);
        return 1;
    }
    struct pollfd item = {.fd = signal_fd, .events = POLLIN};
    while (!signals_read(signal_fd))
        if (poll(&item, 1, -1) < 0 && errno != EINTR)
            break;
    zmq_ctx_shutdown(context);
    pthread_join(thread, NULL);
    zmq_ctx_term(context);
    return 0;
}

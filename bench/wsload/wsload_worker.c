/*  wsload_worker.c - see wsload_worker.h. */
#define _GNU_SOURCE
#include "wsload_worker.h"
#include "ws_client.h"
#include "wsload_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define S_EVENTS 1024       /* epoll events per wait */
#define S_RETRY_BASE_MS 100 /* first retry after this, doubling per attempt */
#define S_RETRY_MAX_MS 2000
#define S_CLOSE_WAIT_MS 2000 /* CLOSE waits this long for close answers */
#define S_REPORTS_MAX 5      /* error frames and failures printed per worker */

typedef enum {
    S_IDLE = 0, /* not started */
    S_SETUP,    /* connecting or being set up: counts against the connect concurrency */
    S_RETRY,    /* waiting for retry_at_ns */
    S_READY,    /* set up */
    S_FAILED,   /* gave up during setup */
    S_DEAD,     /* ended after setup */
} s_status_t;

typedef struct {
    ws_conn_t conn;      /* first: callbacks give back &conn */
    wsload_peer_t peer;  /* protocol state */
    uint8_t status;      /* s_status_t */
    uint8_t attempts;    /* connects tried so far */
    int64_t retry_at_ns; /* S_RETRY: when */
} s_session_t;

typedef struct {
    char issue[WSLOAD_ISSUE_MAX]; /* the relay room's name or Parley's issue */
    uint32_t sends;               /* messages so far: even from the customer, odd the agent */
} s_room_t;

struct wsload_worker_t {
    const wsload_options_t *options; /* borrowed */
    int index;                       /* 0 .. threads - 1 */
    uint32_t first, count;           /* rooms (fanout) or sockets (idle) */
    bool fanout;
    pthread_t thread;
    bool started;
    int epoll_fd, wake_fd, timer_fd; /* owned */
    int done_fd;                     /* borrowed: the controller's */
    ws_client_t *client;
    wsload_proto_t *proto;
    s_session_t *sessions; /* fanout: 2 per room (customer, agent); idle: 1 each */
    uint32_t session_count;
    s_room_t *rooms; /* fanout */
    uint32_t *live;  /* fanout: rooms set up, for sending */
    uint32_t live_count;

    pthread_mutex_t lock;   /* guards order, order_seq and report */
    wsload_order_t order;   /* the latest order given */
    uint64_t order_seq;     /* bumped per order */
    wsload_report_t report; /* published when an order is done */

    wsload_order_t doing; /* the order being carried out (thread only) */
    uint64_t doing_seq;
    bool busy;
    bool quit;

    /* SETUP */
    uint32_t *queue; /* sessions of the phase, in order */
    uint32_t queue_size, queue_next;
    uint32_t *retry; /* sessions waiting to retry */
    uint32_t retry_count;
    uint32_t in_flight, concurrency, pending;
    int64_t setup_deadline_ns;

    /* STEP */
    uint64_t due_sent; /* messages sent (or skipped) so far in this step */
    uint32_t cursor;   /* next entry of live */
    uint64_t seq;      /* message ids */
    bool measuring, measured;
    int64_t cpu0_us, thread_cpu0_us, wall0_ns;
    wsload_step_stats_t stats;

    /* CLOSE */
    int64_t close_deadline_ns;

    /* totals, copied to every report */
    uint64_t errors, ends[8], close_codes[WSLOAD_CLOSE_CODES], close_other;
    uint64_t dropped; /* sessions that ended after setup */
    int errors_printed, failures_printed;
    unsigned seed; /* rand_r, for retry jitter */

    char frame[WSLOAD_FRAME_MAX];
    char *message; /* a message frame being built */
    size_t message_capacity;
};

static void s_on_open(void *arg, ws_conn_t *conn);
static int s_on_text(void *arg, ws_conn_t *conn, const char *data, size_t size);
static void s_on_end(void *arg, ws_conn_t *conn, ws_end_t why, int detail);

static const ws_handler_t s_handler = {s_on_open, s_on_text, s_on_end};

wsload_worker_t *wsload_worker_new(const wsload_options_t *options, int index, uint32_t first,
                                   uint32_t count, int done_fd)
{
    wsload_worker_t *self = calloc(1, sizeof *self);
    if (!self) {
        fprintf(stderr, "wsload: out of memory\n");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->options = options;
    self->index = index;
    self->first = first;
    self->count = count;
    self->fanout = options->mode == WSLOAD_MODE_FANOUT;
    self->done_fd = done_fd;
    self->seed = (unsigned)index * 2654435761u + 1;
    self->wake_fd = self->timer_fd = -1;
    self->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (self->epoll_fd < 0 || self->wake_fd < 0 || self->timer_fd < 0) {
        fprintf(stderr, "wsload: epoll_create1/eventfd/timerfd_create failed: %s\n",
                strerror(errno));
        goto fail;
    }
    struct epoll_event wake = {.events = EPOLLIN, .data.ptr = &self->wake_fd};
    struct epoll_event timer = {.events = EPOLLIN, .data.ptr = &self->timer_fd};
    if (epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->wake_fd, &wake) != 0 ||
        epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, self->timer_fd, &timer) != 0) {
        fprintf(stderr, "wsload: epoll_ctl failed: %s\n", strerror(errno));
        goto fail;
    }
    self->client = ws_client_new(options->host, options->port, options->path,
                                 options->source_addresses, &s_handler, self, self->epoll_fd);
    if (!self->client)
        goto fail;
    self->proto = wsload_proto_new(options);
    self->session_count = self->fanout ? 2 * count : count;
    self->sessions = calloc(self->session_count, sizeof *self->sessions);
    self->queue = calloc(self->session_count, sizeof *self->queue);
    self->retry = calloc(self->session_count, sizeof *self->retry);
    self->message_capacity = options->text_bytes + 1024;
    self->message = malloc(self->message_capacity);
    if (self->fanout) {
        self->rooms = calloc(count, sizeof *self->rooms);
        self->live = calloc(count, sizeof *self->live);
    }
    if (!self->proto || !self->sessions || !self->queue || !self->retry || !self->message ||
        (self->fanout && (!self->rooms || !self->live))) {
        fprintf(stderr, "wsload: out of memory\n");
        goto fail;
    }
    for (uint32_t i = 0; i < self->session_count; i++) {
        s_session_t *session = &self->sessions[i];
        session->conn.fd = -1;
        if (self->fanout) {
            uint32_t room = i / 2;
            session->peer.number = first + room;
            session->peer.issue = self->rooms[room].issue;
            session->peer.role = options->protocol == WSLOAD_PROTOCOL_RELAY ? WSLOAD_ROLE_MEMBER
                                 : i % 2 == 0                               ? WSLOAD_ROLE_CUSTOMER
                                                                            : WSLOAD_ROLE_AGENT;
        } else {
            session->peer.number = first + i;
            session->peer.idle = true;
            session->peer.role = options->protocol == WSLOAD_PROTOCOL_RELAY ? WSLOAD_ROLE_MEMBER
                                                                            : WSLOAD_ROLE_CUSTOMER;
        }
    }
    int threads = options->threads > 0 ? options->threads : 1;
    self->concurrency = (uint32_t)(options->connect_concurrency / threads);
    if (self->concurrency == 0)
        self->concurrency = 1;
    return self;
fail:
    wsload_worker_destroy(&self);
    return NULL;
}

void wsload_worker_stop(wsload_worker_t *self)
{
    if (!self->started)
        return;
    wsload_order_t close_order = {.kind = WSLOAD_ORDER_CLOSE};
    wsload_worker_order(self, &close_order);
    pthread_join(self->thread, NULL);
    self->started = false;
}

void wsload_worker_destroy(wsload_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wsload_worker_t *self = *self_p;
    wsload_worker_stop(self);
    for (uint32_t i = 0; self->sessions && i < self->session_count; i++)
        ws_conn_release(self->client, &self->sessions[i].conn);
    ws_client_destroy(&self->client);
    wsload_proto_destroy(&self->proto);
    if (self->epoll_fd >= 0)
        close(self->epoll_fd);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    if (self->timer_fd >= 0)
        close(self->timer_fd);
    free(self->sessions);
    free(self->queue);
    free(self->retry);
    free(self->rooms);
    free(self->live);
    free(self->message);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

uint32_t wsload_worker_count(const wsload_worker_t *self)
{
    return self->count;
}

void wsload_worker_order(wsload_worker_t *self, const wsload_order_t *order)
{
    pthread_mutex_lock(&self->lock);
    self->order = *order;
    self->order_seq++;
    pthread_mutex_unlock(&self->lock);
    uint64_t one = 1;
    if (write(self->wake_fd, &one, sizeof one) != sizeof one)
        fprintf(stderr, "wsload: write(eventfd) failed: %s\n", strerror(errno));
}

void wsload_worker_report(wsload_worker_t *self, wsload_report_t *report)
{
    pthread_mutex_lock(&self->lock);
    *report = self->report;
    pthread_mutex_unlock(&self->lock);
}

/* Returns the session that owns conn. */
static s_session_t *s_session(ws_conn_t *conn)
{
    return (s_session_t *)conn; /* conn is the first member */
}

/* Returns the letter a session's messages carry: 'c' for the first member of a room, 'a' for
   the second. */
static char s_from(const wsload_worker_t *self, const s_session_t *session)
{
    return (uint32_t)(session - self->sessions) % 2 == 0 ? 'c' : 'a';
}

/* True while a step is being measured or carried out. */
static bool s_stepping(const wsload_worker_t *self)
{
    return self->busy && self->doing.kind == WSLOAD_ORDER_STEP;
}

/* Publishes the report of the order just finished and tells the controller. */
static void s_finish(wsload_worker_t *self)
{
    wsload_report_t report = {0};
    for (uint32_t i = 0; i < self->session_count; i++) {
        const s_session_t *session = &self->sessions[i];
        report.open += session->conn.state == WS_STATE_OPEN;
        bool in_phase = !self->fanout || self->options->protocol == WSLOAD_PROTOCOL_RELAY ||
                        (int)(i % 2) == self->doing.phase;
        if (self->doing.kind == WSLOAD_ORDER_SETUP && in_phase) {
            report.sockets_ready += session->status == S_READY;
            report.sockets_failed += session->status == S_FAILED;
        }
    }
    self->live_count = 0;
    for (uint32_t room = 0; self->fanout && room < self->count; room++)
        if (self->sessions[2 * room].status == S_READY &&
            self->sessions[2 * room + 1].status == S_READY)
            self->live[self->live_count++] = room;
    report.rooms_ready = self->live_count;
    if (self->doing.kind == WSLOAD_ORDER_STEP)
        report.step = self->stats;
    report.errors = self->errors;
    memcpy(report.ends, self->ends, sizeof report.ends);
    memcpy(report.close_codes, self->close_codes, sizeof report.close_codes);
    report.close_other = self->close_other;
    report.dropped = self->dropped;

    struct itimerspec off = {0};
    timerfd_settime(self->timer_fd, 0, &off, NULL);
    self->busy = false;
    pthread_mutex_lock(&self->lock);
    self->report = report;
    pthread_mutex_unlock(&self->lock);
    uint64_t one = 1;
    if (write(self->done_fd, &one, sizeof one) != sizeof one)
        fprintf(stderr, "wsload: write(eventfd) failed: %s\n", strerror(errno));
}

/* Prints one line about a session that failed or closed, for the first few per worker. */
static void s_tell(wsload_worker_t *self, const s_session_t *session, const char *what,
                   ws_end_t why, int detail)
{
    if (self->failures_printed++ >= S_REPORTS_MAX)
        return;
    const char *role = session->peer.role == WSLOAD_ROLE_AGENT      ? "agent"
                       : session->peer.role == WSLOAD_ROLE_CUSTOMER ? "customer"
                                                                    : "member";
    char more[96] = "";
    if (why == WS_END_CONNECT || why == WS_END_IO || why == WS_END_LOCAL)
        snprintf(more, sizeof more, " (%s)", strerror(detail));
    else if (why == WS_END_HANDSHAKE && detail == 101)
        snprintf(more, sizeof more, " (101 without the expected Sec-WebSocket-Accept)");
    else if (why == WS_END_HANDSHAKE)
        snprintf(more, sizeof more, " (HTTP status %d)", detail);
    else if (why == WS_END_CLOSE)
        snprintf(more, sizeof more, " (code %d)", detail);
    fprintf(stderr, "wsload: %s %" PRIu32 " %s: %s%s\n", role, session->peer.number, what,
            why ? ws_end_name(why) : "could not start", more);
}

/* A setup attempt of session failed: schedules a retry, or gives up. */
static void s_setup_failed(wsload_worker_t *self, s_session_t *session, ws_end_t why, int detail)
{
    if (session->status == S_SETUP)
        self->in_flight--;
    session->peer.state = WSLOAD_PEER_NEW;
    if (session->attempts < self->options->connect_attempts) {
        int64_t wait_ms = (int64_t)S_RETRY_BASE_MS << (session->attempts - 1);
        if (wait_ms > S_RETRY_MAX_MS)
            wait_ms = S_RETRY_MAX_MS;
        wait_ms += rand_r(&self->seed) % (wait_ms / 4 + 1); /* jitter: no waves of retries */
        session->status = S_RETRY;
        session->retry_at_ns = wsload_now_ns() + wait_ms * 1000000;
        self->retry[self->retry_count++] = (uint32_t)(session - self->sessions);
        return;
    }
    session->status = S_FAILED;
    self->pending--;
    s_tell(self, session, "setup failed, last attempt", why, detail);
}

/* Starts a setup attempt for session. */
static void s_start(wsload_worker_t *self, s_session_t *session)
{
    session->attempts++;
    int rc = ws_conn_connect(self->client, &session->conn);
    if (rc < 0) {
        session->status = S_IDLE;
        s_setup_failed(self, session, WS_END_CONNECT, -rc);
        return;
    }
    session->status = S_SETUP;
    self->in_flight++;
}

static void s_on_open(void *arg, ws_conn_t *conn)
{
    wsload_worker_t *self = arg;
    s_session_t *session = s_session(conn);
    long size = wsload_proto_opening(self->proto, &session->peer, self->frame, sizeof self->frame);
    if (size < 0) {
        fprintf(stderr, "wsload: cannot write the first frame (token minting failed?)\n");
        ws_conn_abort(self->client, conn);
        s_setup_failed(self, session, WS_END_LOCAL, EINVAL);
        return;
    }
    ws_conn_send_text(self->client, conn, self->frame, (size_t)size); /* failure: on_end ran */
}

/* Counts and shows an error frame. */
static void s_error_frame(wsload_worker_t *self, const s_session_t *session,
                          const wsload_frame_t *frame)
{
    self->errors++;
    if (s_stepping(self))
        self->stats.errors++;
    if (self->errors_printed++ < S_REPORTS_MAX)
        fprintf(stderr, "wsload: error frame on socket %" PRIu32 "%c: code=%.*s message=%.*s\n",
                session->peer.number, s_from(self, session), (int)frame->code_size,
                frame->code ? frame->code : "", (int)frame->message_size,
                frame->message ? frame->message : "");
}

/* Records a message frame received by session (set up) while a step runs. */
static void s_message_frame(wsload_worker_t *self, const s_session_t *session,
                            const wsload_frame_t *frame)
{
    if (!frame->ours || frame->from == s_from(self, session) ||
        frame->room != session->peer.number) {
        self->stats.foreign++;
        return;
    }
    if (frame->sent_ns < self->doing.measure_ns || frame->sent_ns >= self->doing.end_ns)
        return; /* warm-up, or an earlier step's straggler */
    int64_t now = wsload_now_ns();
    if (now > self->doing.grace_ns)
        return; /* too late: counts as lost */
    self->stats.received++;
    int64_t latency_ns = now - frame->sent_ns;
    wsload_histogram_record(&self->stats.latency, latency_ns > 0 ? (uint64_t)latency_ns / 1000 : 0);
}

static int s_on_text(void *arg, ws_conn_t *conn, const char *data, size_t size)
{
    wsload_worker_t *self = arg;
    s_session_t *session = s_session(conn);
    wsload_frame_t frame;
    wsload_frame_parse(data, size, &frame);
    if (frame.kind == WSLOAD_FRAME_ERROR)
        s_error_frame(self, session, &frame);
    if (session->status == S_READY) {
        if (frame.kind == WSLOAD_FRAME_MESSAGE && s_stepping(self))
            s_message_frame(self, session, &frame);
        return 0;
    }
    if (session->status != S_SETUP)
        return 0;
    size_t next_size = 0;
    switch (wsload_proto_setup(self->proto, &session->peer, &frame, self->frame, sizeof self->frame,
                               &next_size)) {
    case WSLOAD_SETUP_WAIT:
        return 0;
    case WSLOAD_SETUP_SEND:
        ws_conn_send_text(self->client, conn, self->frame, next_size); /* failure: on_end ran */
        return 0;
    case WSLOAD_SETUP_READY:
        session->status = S_READY;
        self->in_flight--;
        self->pending--;
        return 0;
    case WSLOAD_SETUP_FAIL:
        break;
    }
    return -1; /* on_end follows and retries */
}

static void s_on_end(void *arg, ws_conn_t *conn, ws_end_t why, int detail)
{
    wsload_worker_t *self = arg;
    s_session_t *session = s_session(conn);
    bool closing = self->busy && self->doing.kind == WSLOAD_ORDER_CLOSE;
    if (!closing) {
        self->ends[why & 7]++;
        if (why == WS_END_CLOSE) {
            if (detail >= 1000 && detail < 1000 + WSLOAD_CLOSE_CODES)
                self->close_codes[detail - 1000]++;
            else
                self->close_other++;
        }
    }
    if (session->status == S_SETUP) {
        s_setup_failed(self, session, why, detail);
    } else if (session->status == S_READY) {
        session->status = S_DEAD;
        if (!closing) {
            self->dropped++;
            if (s_stepping(self))
                self->stats.closed++;
            s_tell(self, session, "ended", why, detail);
        }
    }
}

/* Begins a SETUP order: queues the phase's sessions. */
static void s_begin_setup(wsload_worker_t *self)
{
    bool agents_apart = self->fanout && self->options->protocol == WSLOAD_PROTOCOL_PARLEY;
    self->queue_size = self->queue_next = self->retry_count = self->in_flight = self->pending = 0;
    for (uint32_t i = 0; i < self->session_count; i++) {
        s_session_t *session = &self->sessions[i];
        if (agents_apart && (int)(i % 2) != self->doing.phase)
            continue;
        if (agents_apart && self->doing.phase == 1 && self->sessions[i - 1].status != S_READY) {
            session->status = S_FAILED; /* its customer has no conversation */
            continue;
        }
        session->attempts = 0;
        self->queue[self->queue_size++] = i;
        self->pending++;
    }
    self->setup_deadline_ns =
        wsload_now_ns() + (int64_t)self->options->setup_timeout_s * 1000000000;
}

/* Moves a SETUP order on: starts connects and retries, gives up at the deadline. */
static void s_progress_setup(wsload_worker_t *self, int64_t now)
{
    while (self->in_flight < self->concurrency && self->queue_next < self->queue_size)
        s_start(self, &self->sessions[self->queue[self->queue_next++]]);
    for (uint32_t i = 0; i < self->retry_count && self->in_flight < self->concurrency;) {
        s_session_t *session = &self->sessions[self->retry[i]];
        if (session->retry_at_ns > now) {
            i++;
            continue;
        }
        self->retry[i] = self->retry[--self->retry_count];
        s_start(self, session); /* may append to retry: the loop sees it later */
    }
    if (now >= self->setup_deadline_ns && self->pending > 0) {
        fprintf(stderr, "wsload: setup timed out with %" PRIu32 " sockets not set up\n",
                self->pending);
        for (uint32_t i = 0; i < self->queue_size; i++) {
            s_session_t *session = &self->sessions[self->queue[i]];
            if (session->status == S_SETUP || session->status == S_RETRY ||
                session->status == S_IDLE) {
                ws_conn_abort(self->client, &session->conn);
                session->status = S_FAILED;
            }
        }
        self->pending = 0;
    }
    if (self->pending == 0)
        s_finish(self);
}

/* Sends the next message of a step: the next room, from its customer and agent in turn. */
static void s_send_one(wsload_worker_t *self)
{
    uint32_t room = self->live[self->cursor];
    self->cursor = self->cursor + 1 == self->live_count ? 0 : self->cursor + 1;
    uint32_t member = self->rooms[room].sends++ & 1;
    s_session_t *session = &self->sessions[2 * room + member];
    int64_t now = wsload_now_ns();
    bool counted = now >= self->doing.measure_ns && now < self->doing.end_ns;
    self->stats.sent += counted;
    if (session->status != S_READY) {
        self->stats.unsendable += counted;
        return;
    }
    char id[64];
    snprintf(id, sizeof id, "s%" PRIu64 "-%d-%" PRIu64, self->options->run_id, self->index,
             ++self->seq);
    long size = wsload_proto_message(self->proto, self->message, self->message_capacity, id,
                                     self->rooms[room].issue, now, session->peer.number,
                                     member ? 'a' : 'c');
    if (size > 0)
        ws_conn_send_text(self->client, &session->conn, self->message, (size_t)size);
}

/* Moves a STEP order on: sends what is due, takes the CPU samples, ends it after the grace. */
static void s_progress_step(wsload_worker_t *self, int64_t now)
{
    const wsload_order_t *step = &self->doing;
    if (!self->measuring && now >= step->measure_ns) {
        self->measuring = true;
        self->wall0_ns = now;
        self->cpu0_us = wsload_cpu_process_us();
        self->thread_cpu0_us = wsload_cpu_thread_us();
    }
    if (self->measuring && !self->measured && now >= step->end_ns) {
        self->measured = true;
        self->stats.wall_us = (now - self->wall0_ns) / 1000;
        self->stats.cpu_us = self->index == 0 ? wsload_cpu_process_us() - self->cpu0_us : 0;
        self->stats.thread_cpu_us = wsload_cpu_thread_us() - self->thread_cpu0_us;
    }
    if (now > step->start_ns && self->live_count > 0 && step->rate > 0) {
        int64_t until = now < step->end_ns ? now : step->end_ns;
        uint64_t due = (uint64_t)((double)(until - step->start_ns) * step->rate / 1e9);
        while (self->due_sent < due) {
            self->due_sent++;
            s_send_one(self);
        }
    }
    if (now >= step->grace_ns)
        s_finish(self);
}

/* Moves a CLOSE order on: done when every socket is gone or the wait is over. */
static void s_progress_close(wsload_worker_t *self, int64_t now)
{
    bool open = false;
    for (uint32_t i = 0; i < self->session_count && !open; i++)
        open = self->sessions[i].conn.state != WS_STATE_IDLE;
    if (open && now < self->close_deadline_ns)
        return;
    for (uint32_t i = 0; i < self->session_count; i++)
        ws_conn_abort(self->client, &self->sessions[i].conn);
    s_finish(self);
    self->quit = true;
}

/* Takes the latest order, if there is a new one, and begins it. */
static void s_take_order(wsload_worker_t *self)
{
    uint64_t count;
    if (read(self->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        fprintf(stderr, "wsload: read(eventfd) failed: %s\n", strerror(errno));
    pthread_mutex_lock(&self->lock);
    wsload_order_t order = self->order;
    uint64_t seq = self->order_seq;
    pthread_mutex_unlock(&self->lock);
    if (seq == self->doing_seq)
        return;
    self->doing_seq = seq;
    self->doing = order;
    self->busy = true;
    if (order.kind == WSLOAD_ORDER_SETUP) {
        s_begin_setup(self);
    } else if (order.kind == WSLOAD_ORDER_STEP) {
        memset(&self->stats, 0, sizeof self->stats);
        self->due_sent = 0;
        self->measuring = self->measured = false;
        struct itimerspec tick = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
        timerfd_settime(self->timer_fd, 0, &tick, NULL);
    } else {
        for (uint32_t i = 0; i < self->session_count; i++) {
            s_session_t *session = &self->sessions[i];
            if (session->conn.state == WS_STATE_OPEN)
                ws_conn_close(self->client, &session->conn, 1000);
            else
                ws_conn_abort(self->client, &session->conn);
        }
        self->close_deadline_ns = wsload_now_ns() + (int64_t)S_CLOSE_WAIT_MS * 1000000;
    }
}

/* Returns how long the loop may sleep, in milliseconds (-1: until an event). */
static int s_timeout_ms(const wsload_worker_t *self, int64_t now)
{
    if (!self->busy || self->doing.kind == WSLOAD_ORDER_STEP)
        return -1; /* idle, or the timerfd ticks */
    if (self->doing.kind == WSLOAD_ORDER_CLOSE)
        return 10;
    int64_t wake = self->setup_deadline_ns;
    for (uint32_t i = 0; i < self->retry_count; i++)
        if (self->sessions[self->retry[i]].retry_at_ns < wake)
            wake = self->sessions[self->retry[i]].retry_at_ns;
    int64_t ms = (wake - now) / 1000000 + 1;
    return ms < 1 ? 1 : ms > 100 ? 100 : (int)ms;
}

static void *s_thread(void *arg)
{
    wsload_worker_t *self = arg;
    struct epoll_event events[S_EVENTS];
    while (!self->quit) {
        int count =
            epoll_wait(self->epoll_fd, events, S_EVENTS, s_timeout_ms(self, wsload_now_ns()));
        if (count < 0 && errno != EINTR) {
            fprintf(stderr, "wsload: epoll_wait failed: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < count; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == &self->wake_fd) {
                s_take_order(self);
            } else if (ptr == &self->timer_fd) {
                uint64_t ticks;
                if (read(self->timer_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                    fprintf(stderr, "wsload: read(timerfd) failed: %s\n", strerror(errno));
            } else {
                ws_conn_event(self->client, ptr, events[i].events);
            }
        }
        if (!self->busy)
            continue;
        int64_t now = wsload_now_ns();
        if (self->doing.kind == WSLOAD_ORDER_SETUP)
            s_progress_setup(self, now);
        else if (self->doing.kind == WSLOAD_ORDER_STEP)
            s_progress_step(self, now);
        else
            s_progress_close(self, now);
    }
    return NULL;
}

int wsload_worker_start(wsload_worker_t *self)
{
    int rc = pthread_create(&self->thread, NULL, s_thread, self);
    if (rc != 0) {
        fprintf(stderr, "wsload: pthread_create failed: %s\n", strerror(rc));
        return -1;
    }
    self->started = true;
    return 0;
}

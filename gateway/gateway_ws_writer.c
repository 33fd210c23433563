/*  gateway_ws_writer.c - frames out of the gateway: each socket's queue (gateway_outbox),
    written once per event-loop turn straight to the sockets that can take them (all of a
    socket's frames of the turn packed in one write), through a writable callback for the
    others; status frames (ack, persisted) held back until the socket's next frame or their
    due time, so they share its write; flow control (a client whose answers pile up is not
    read until they drain) and slow consumers (cut off at once). See gateway_ws_internal.h. */
#include "../common/plog.h"
#include "gateway_ws_internal.h"

#include <stdlib.h>
#include <string.h>

/* Queues length bytes of text (copied) for socket as one text frame. Returns true when it
   is queued (false: the socket is being cut off). */
static bool s_queue(gateway_ws_t *self, gw_socket_t *socket, const char *text, size_t length)
{
    if (socket->closing)
        return false; /* being cut off: nothing more goes out */
    self->frames_out++;
    if (gateway_outbox_push(&socket->outbox, text, length) != 0)
        plog_warn("frame_dropped", "socket=%llu reason=\"out of memory\"",
                  (unsigned long long)socket->id);
    if (socket->outbox.count > (size_t)self->config->outbox_max) {
        /* a slow consumer: cut off now rather than buffered without bound. It may never be
           writable again, so the close cannot wait for that: lws closes it on its next turn
           (with a 1008 close frame if the socket still takes one) */
        socket->closing = true;
        self->slow_consumers++;
        plog_warn("slow_consumer", "socket=%llu frames=%zu", (unsigned long long)socket->id,
                  socket->outbox.count);
        gateway_outbox_clear(&socket->outbox);
        lws_close_reason(socket->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)"too slow", 8);
        lws_set_timeout(socket->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return false;
    }
    if (!socket->rx_paused && socket->outbox.count >= (size_t)self->config->outbox_max / 2) {
        /* answers pile up faster than they go out: read no more of this client's frames
           until they have (TCP pushes back on a client that sends without reading) */
        socket->rx_paused = true;
        self->rx_pauses++;
        lws_rx_flow_control(socket->wsi, 0);
    }
    return true;
}

/* Puts socket in the list written at the end of the loop's turn. */
static void s_mark_dirty(gateway_ws_t *self, gw_socket_t *socket)
{
    if (!socket->dirty) {
        socket->dirty = true;
        socket->prev_dirty = NULL;
        socket->next_dirty = self->dirty;
        if (self->dirty)
            self->dirty->prev_dirty = socket;
        self->dirty = socket;
    }
}

void gw_forget_dirty(gateway_ws_t *self, gw_socket_t *socket)
{
    if (!socket->dirty)
        return;
    if (socket->prev_dirty)
        socket->prev_dirty->next_dirty = socket->next_dirty;
    else
        self->dirty = socket->next_dirty;
    if (socket->next_dirty)
        socket->next_dirty->prev_dirty = socket->prev_dirty;
    socket->next_dirty = socket->prev_dirty = NULL;
    socket->dirty = false;
}

void gw_send_text(gateway_ws_t *self, gw_socket_t *socket, const char *text, size_t length)
{
    if (s_queue(self, socket, text, length))
        s_mark_dirty(self, socket);
}

/* Arms the status timer for the oldest socket waiting. */
static void s_arm_status_timer(gateway_ws_t *self, int64_t now_ms);

/* The status timer: the sockets whose status frames are due are written this turn. */
static void s_on_status_timer(lws_sorted_usec_list_t *sul)
{
    gateway_ws_t *self = lws_container_of(sul, gateway_ws_t, status_timer);
    int64_t now = zclock_mono();
    while (self->waiting_count && self->waiting[self->waiting_head].due_ms <= now) {
        uint64_t id = self->waiting[self->waiting_head].socket;
        int64_t due_ms = self->waiting[self->waiting_head].due_ms;
        self->waiting_head = (self->waiting_head + 1) % self->waiting_capacity;
        self->waiting_count--;
        gw_socket_t *socket = zhashx_lookup(self->sockets, (void *)(uintptr_t)id);
        /* (an entry of a socket whose frames left with another frame meanwhile is stale) */
        if (socket && socket->waiting && socket->waiting_due_ms == due_ms) {
            socket->waiting = false;
            if (socket->outbox.count)
                s_mark_dirty(self, socket); /* the loop's flush follows this turn */
        }
    }
    s_arm_status_timer(self, now);
}

static void s_arm_status_timer(gateway_ws_t *self, int64_t now_ms)
{
    if (!self->waiting_count)
        return;
    int64_t wait_ms = self->waiting[self->waiting_head].due_ms - now_ms;
    lws_sul_schedule(self->context, 0, &self->status_timer, s_on_status_timer,
                     (wait_ms > 0 ? wait_ms : 0) * LWS_US_PER_MS);
}

/* Grows the ring of waiting sockets (kept in order). Returns 0 or -1. */
static int s_grow_waiting(gateway_ws_t *self)
{
    size_t capacity = self->waiting_capacity ? 2 * self->waiting_capacity : 256;
    gw_waiting_t *grown = malloc(capacity * sizeof *grown);
    if (!grown)
        return -1;
    for (size_t i = 0; i < self->waiting_count; i++)
        grown[i] = self->waiting[(self->waiting_head + i) % self->waiting_capacity];
    free(self->waiting);
    self->waiting = grown;
    self->waiting_head = 0;
    self->waiting_capacity = capacity;
    return 0;
}

void gw_send_status(gateway_ws_t *self, gw_socket_t *socket, const char *text, size_t length)
{
    if (self->config->status_delay_ms == 0 || !self->context || socket->going_away) {
        gw_send_text(self, socket, text, length);
        return;
    }
    if (!s_queue(self, socket, text, length) || socket->dirty || socket->waiting)
        return; /* leaves with what is already due */
    if (self->waiting_count == self->waiting_capacity && s_grow_waiting(self) != 0) {
        s_mark_dirty(self, socket); /* not held back, then */
        return;
    }
    int64_t now = zclock_mono();
    size_t tail = (self->waiting_head + self->waiting_count) % self->waiting_capacity;
    socket->waiting_due_ms = now + self->config->status_delay_ms;
    self->waiting[tail] = (gw_waiting_t){socket->id, socket->waiting_due_ms};
    socket->waiting = true;
    if (self->waiting_count++ == 0)
        s_arm_status_timer(self, now);
}

/* Queues frame (a JSON object, taken) for socket. */
void gw_send(gateway_ws_t *self, gw_socket_t *socket, json_t *frame)
{
    char *text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);
    if (text)
        gw_send_text(self, socket, text, strlen(text));
    free(text);
}

void gw_error(gateway_ws_t *self, gw_socket_t *socket, const char *code,
                    const char *message, const char *id)
{
    self->errors_sent++;
    json_writer_begin(&self->writer);
    json_writer_cstring(&self->writer, "type", "error");
    json_writer_cstring(&self->writer, "code", code);
    json_writer_cstring(&self->writer, "message", message);
    json_writer_cstring(&self->writer, "id", id);
    if (json_writer_end(&self->writer) == 0)
        gw_send_text(self, socket, self->writer.data, self->writer.length);
}

/* Writes what the socket's outbox holds now (a bounded number of frames, to be fair to the
   other sockets); lws buffers the rest of a frame the kernel did not take whole. Returns 0,
   or -1 when the connection failed. (Not lws_send_pipe_choked: that is a poll() per call.) */
static int s_write(gateway_ws_t *self, struct lws *wsi, gw_socket_t *socket)
{
    if (socket->outbox.count > 1) {
        /* several waiting: as whole frames in one write (lws passes raw bytes through) */
        size_t packed = gateway_outbox_pack(&socket->outbox, self->batch + LWS_PRE,
                                            GW_BATCH_BYTES);
        if (packed && lws_write(wsi, self->batch + LWS_PRE, packed, LWS_WRITE_RAW) < (int)packed)
            return -1;
        if (packed && lws_partial_buffered(wsi))
            return 0; /* the rest when the kernel takes more */
    }
    size_t length;
    uint8_t *text;
    for (int n = 0; n < GW_WRITES_PER_TURN && (text = gateway_outbox_peek(&socket->outbox, &length));
         n++) {
        int written = lws_write(wsi, text, length, LWS_WRITE_TEXT);
        gateway_outbox_pop(&socket->outbox);
        if (written < (int)length)
            return -1;
        if (lws_partial_buffered(wsi))
            break; /* the kernel took part of it: the rest goes when it is writable again */
    }
    if (socket->rx_paused && socket->outbox.count <= (size_t)self->config->outbox_max / 4) {
        socket->rx_paused = false;
        lws_rx_flow_control(wsi, 1);
    }
    return 0;
}

int gw_writable(gateway_ws_t *self, struct lws *wsi, gw_socket_t *socket)
{
    if (socket->going_away && socket->outbox.count == 0) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY,
                         (unsigned char *)"gateway stopping; reconnect", 27);
        return -1;
    }
    if (socket->closing)
        return -1;
    if (s_write(self, wsi, socket) != 0)
        return -1;
    gw_resume_feed(self, socket); /* a resume's next transcript messages, now there is room */
    if (socket->outbox.count || socket->going_away)
        lws_callback_on_writable(wsi); /* more, or the close frame after the last one */
    return 0;
}

void gateway_ws_flush(gateway_ws_t *self)
{
    while (self->dirty) {
        gw_socket_t *socket = self->dirty;
        gw_forget_dirty(self, socket);
        if (socket->closing)
            continue;
        /* straight out when nothing of this socket is still in lws's hands: no writable
           round trip (two epoll_ctl and a loop turn) per frame */
        if (!socket->going_away && !lws_partial_buffered(socket->wsi) &&
            s_write(self, socket->wsi, socket) != 0) {
            socket->closing = true;
            lws_set_timeout(socket->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        if (socket->outbox.count == 0)
            socket->waiting = false; /* what it held back has left: the next waits afresh */
        gw_resume_feed(self, socket); /* what it queues makes the socket dirty again */
        if (socket->outbox.count || socket->going_away)
            lws_callback_on_writable(socket->wsi);
    }
}

/*  gateway_ws_writer.c - frames out of the gateway: each socket's queue (gateway_outbox),
    written once per event-loop turn straight to the sockets that can take them (all of a
    socket's frames of the turn packed in one write), through a writable callback for the
    others; flow control (a client whose answers pile up is not read until they drain) and
    slow consumers (cut off at once). See gateway_ws_internal.h. */
#include "../common/plog.h"
#include "gateway_ws_internal.h"

#include <stdlib.h>
#include <string.h>

/* Queues length bytes of text (copied) for socket as one text frame. */
void gw_send_text(gateway_ws_t *self, gw_socket_t *socket, const char *text, size_t length)
{
    if (socket->closing)
        return; /* being cut off: nothing more goes out */
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
        return;
    }
    if (!socket->rx_paused && socket->outbox.count >= (size_t)self->config->outbox_max / 2) {
        /* answers pile up faster than they go out: read no more of this client's frames
           until they have (TCP pushes back on a client that sends without reading) */
        socket->rx_paused = true;
        self->rx_pauses++;
        lws_rx_flow_control(socket->wsi, 0);
    }
    if (!socket->dirty) {
        socket->dirty = true;
        socket->next_dirty = self->dirty;
        self->dirty = socket;
    }
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
    if (socket->outbox.count || socket->going_away)
        lws_callback_on_writable(wsi); /* more, or the close frame after the last one */
    return 0;
}

void gateway_ws_flush(gateway_ws_t *self)
{
    while (self->dirty) {
        gw_socket_t *socket = self->dirty;
        self->dirty = socket->next_dirty;
        socket->dirty = false;
        socket->next_dirty = NULL;
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
        if (socket->outbox.count || socket->going_away)
            lws_callback_on_writable(socket->wsi);
    }
}

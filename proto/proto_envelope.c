/*  proto_envelope.c - receiving, checking and sending envelope frames; see proto_envelope.h. */
#include "proto_envelope.h"

#include <errno.h>
#include <string.h>

static const char *s_reject_names[PROTO_REJECT_KINDS] = {
    "ok", "bad_frames", "bad_signature", "bad_version", "bad_command", "bad_header", "oversized",
};

const char *proto_reject_name(proto_reject_t reason)
{
    return (unsigned)reason < PROTO_REJECT_KINDS ? s_reject_names[reason] : "unknown";
}

const char *proto_command_name(int command)
{
    static const char *names[] = {"UNKNOWN",   "READY",      "REQUEST", "REPLY",
                                  "ERROR",     "HEARTBEAT",  "DISCONNECT", "DRAIN"};
    return command >= PROTO_READY && command <= PROTO_DRAIN ? names[command] : names[0];
}

int proto_frames_recv(proto_frames_t *self, void *socket, int flags)
{
    self->count = 0;
    self->total = 0;
    self->bytes = 0;
    for (;;) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = self->count < PROTO_FRAMES_MAX ? &self->frames[self->count] : &scratch;
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, socket, self->total == 0 ? flags : 0) < 0) {
            int saved = errno;
            zmq_msg_close(frame);
            proto_frames_close(self);
            errno = saved;
            return -1;
        }
        self->total++;
        self->bytes += zmq_msg_size(frame);
        int more = zmq_msg_more(frame);
        if (frame == &scratch)
            zmq_msg_close(frame);
        else
            self->count++;
        if (!more)
            return 0;
    }
}

void proto_frames_close(proto_frames_t *self)
{
    for (int i = 0; i < self->count; i++)
        zmq_msg_close(&self->frames[i]);
    self->count = 0;
}

proto_reject_t proto_envelope_parse(proto_frames_t *frames, bool routed, size_t max_bytes,
                                    proto_envelope_t *out)
{
    memset(out, 0, sizeof *out);
    if (frames->bytes > max_bytes)
        return PROTO_OVERSIZED;
    int first = routed ? 1 : 0;
    if (frames->total < first + 3 || frames->total != frames->count)
        return PROTO_BAD_FRAMES;
    zmq_msg_t *signature = &frames->frames[first];
    size_t sig_size = zmq_msg_size(signature);
    const char *sig = zmq_msg_data(signature);
    if (sig_size != strlen(PROTO_SIGNATURE) || memcmp(sig, PROTO_SIGNATURE, sig_size) != 0) {
        size_t family = strlen(PROTO_SIGNATURE_FAMILY);
        if (sig_size > family && memcmp(sig, PROTO_SIGNATURE_FAMILY, family) == 0)
            return PROTO_BAD_VERSION;
        return PROTO_BAD_SIGNATURE;
    }
    zmq_msg_t *command = &frames->frames[first + 1];
    if (zmq_msg_size(command) != 1)
        return PROTO_BAD_COMMAND;
    out->command = *(const uint8_t *)zmq_msg_data(command);
    if (out->command < PROTO_READY || out->command > PROTO_DRAIN)
        return PROTO_BAD_COMMAND;
    bool with_payload = out->command == PROTO_REQUEST || out->command == PROTO_REPLY;
    if (frames->total != first + 3 + (with_payload ? 1 : 0))
        return PROTO_BAD_FRAMES;
    out->route = routed ? &frames->frames[0] : NULL;
    out->header = zmq_msg_data(&frames->frames[first + 2]);
    out->header_size = zmq_msg_size(&frames->frames[first + 2]);
    out->payload = with_payload ? &frames->frames[first + 3] : NULL;
    return PROTO_OK;
}

int proto_envelope_send(void *socket, zmq_msg_t *route, proto_command_t command,
                        const uint8_t *header, size_t header_size, zmq_msg_t *payload, int flags)
{
    zmq_msg_t frame;
    if (route) {
        zmq_msg_init(&frame);
        zmq_msg_copy(&frame, route);
        if (zmq_msg_send(&frame, socket, ZMQ_SNDMORE | flags) < 0) {
            int saved = errno;
            zmq_msg_close(&frame);
            errno = saved;
            return -1;
        }
    }
    /* Once the first frame is queued, ZeroMQ accepts the rest of the message atomically. */
    if (zmq_send(socket, PROTO_SIGNATURE, strlen(PROTO_SIGNATURE), ZMQ_SNDMORE | flags) < 0)
        return -1;
    uint8_t cmd = (uint8_t)command;
    zmq_send(socket, &cmd, 1, ZMQ_SNDMORE);
    zmq_send(socket, header, header_size, payload ? ZMQ_SNDMORE : 0);
    if (payload)
        zmq_msg_send(payload, socket, 0);
    return 0;
}

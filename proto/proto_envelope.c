/*  proto_envelope.c - receiving, checking and sending envelope frames; see proto_envelope.h. */
#include "proto_envelope.h"

#include <errno.h>
#include <time.h>
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
    if (frames->total < first + 1 || frames->total != frames->count)
        return PROTO_BAD_FRAMES;
    zmq_msg_t *envelope = &frames->frames[first];
    size_t size = zmq_msg_size(envelope);
    const uint8_t *data = zmq_msg_data(envelope);
    if (size < PROTO_SIGNATURE_SIZE || memcmp(data, PROTO_SIGNATURE, PROTO_SIGNATURE_SIZE) != 0) {
        size_t family = strlen(PROTO_SIGNATURE_FAMILY);
        if (size >= PROTO_SIGNATURE_SIZE && memcmp(data, PROTO_SIGNATURE_FAMILY, family) == 0)
            return PROTO_BAD_VERSION;
        return PROTO_BAD_SIGNATURE;
    }
    if (size < PROTO_PREFIX_SIZE)
        return PROTO_BAD_COMMAND;
    out->command = data[PROTO_SIGNATURE_SIZE];
    if (out->command < PROTO_READY || out->command > PROTO_DRAIN)
        return PROTO_BAD_COMMAND;
    bool with_payload = out->command == PROTO_REQUEST || out->command == PROTO_REPLY;
    if (frames->total != first + 1 + (with_payload ? 1 : 0))
        return PROTO_BAD_FRAMES;
    out->route = routed ? &frames->frames[0] : NULL;
    out->header = data + PROTO_PREFIX_SIZE;
    out->header_size = size - PROTO_PREFIX_SIZE;
    out->payload = with_payload ? &frames->frames[first + 1] : NULL;
    return PROTO_OK;
}

int proto_event_publish(void *socket, const char *topic, const char *type, const char *origin,
                        const uint8_t *payload, size_t size)
{
    size_t topic_size = strlen(topic);
    if (topic_size == 0 || topic_size > 255 || !proto_name_valid(type, strlen(type)) ||
        !proto_name_valid(origin, strlen(origin)))
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    proto_event_t header = {.has_ts_ms = true, .has_origin = true,
                            .ts_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000};
    proto_name_set(header.type, type);
    proto_name_set(header.origin, origin);
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    int rc = proto_event_encode(&header, &encoded);
    if (rc == 0)
        rc = zmq_send(socket, topic, topic_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ? -1 : 0;
    if (rc == 0) {
        zmq_send(socket, encoded.data, encoded.size, ZMQ_SNDMORE);
        zmq_send(socket, payload, size, 0);
    }
    proto_buffer_release(&encoded);
    return rc;
}

void proto_envelope_begin(proto_buffer_t *buffer, proto_command_t command)
{
    proto_buffer_init(buffer);
    uint8_t prefix[PROTO_PREFIX_SIZE];
    memcpy(prefix, PROTO_SIGNATURE, PROTO_SIGNATURE_SIZE);
    prefix[PROTO_SIGNATURE_SIZE] = (uint8_t)command;
    proto_buffer_append(buffer, prefix, sizeof prefix);
}

int proto_envelope_send(void *socket, zmq_msg_t *route, const proto_buffer_t *envelope,
                        zmq_msg_t *payload, int flags)
{
    if (envelope->failed) {
        errno = ENOMEM;
        return -1;
    }
    int more = payload ? ZMQ_SNDMORE : 0;
    if (route) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        zmq_msg_copy(&frame, route);
        if (zmq_msg_send(&frame, socket, ZMQ_SNDMORE | flags) < 0) {
            int saved = errno;
            zmq_msg_close(&frame);
            errno = saved;
            return -1;
        }
        /* Once the first frame is queued, ZeroMQ takes the rest of the message atomically. */
        zmq_send(socket, envelope->data, envelope->size, more);
    } else if (zmq_send(socket, envelope->data, envelope->size, more | flags) < 0)
        return -1;
    if (payload)
        zmq_msg_send(payload, socket, 0);
    return 0;
}

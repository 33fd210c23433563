/*  broker_events.c - the event forwarder: publishers -> XSUB -> XPUB -> subscribers, and
    subscriptions upstream the other way, so ZeroMQ filters topics at the publishers.

    An event is three frames: topic, header (proto_event_t), payload. Messages of another shape
    are counted and dropped; the payload is never looked at. */
#include "broker_internal.h"
#include "../common/plog.h"

#define S_BATCH 512
#define S_TOPIC_MAX 255

/* Checks one event's frames. Returns NULL, or why it is rejected. */
static const char *s_check_event(broker_t *self, proto_frames_t *frames)
{
    if (frames->bytes > (size_t)self->config.max_frame_bytes)
        return "oversized";
    if (frames->total != 3 || frames->count != 3)
        return "bad_frames";
    size_t topic = zmq_msg_size(&frames->frames[0]);
    if (topic == 0 || topic > S_TOPIC_MAX)
        return "bad_topic";
    proto_event_t header;
    proto_decode_error_t why;
    if (proto_event_decode(&header, zmq_msg_data(&frames->frames[1]),
                           zmq_msg_size(&frames->frames[1]), &why) != 0)
        return "bad_header";
    return NULL;
}

int broker_events_forward(broker_t *self)
{
    void *in = zsock_resolve(self->events_in);
    void *out = zsock_resolve(self->events_out);
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH; i++) {
        if (proto_frames_recv(&frames, in, ZMQ_DONTWAIT) != 0)
            break;
        const char *why = s_check_event(self, &frames);
        if (why) {
            self->counters.events_rejected++;
            char fields[128];
            snprintf(fields, sizeof fields, "socket=events_in reason=%s bytes=%zu", why,
                     frames.bytes);
            broker_warn_input(self, "event_rejected", fields);
        } else {
            /* XPUB never blocks: a subscriber over its high-water mark loses the event. */
            zmq_msg_send(&frames.frames[0], out, ZMQ_SNDMORE);
            zmq_msg_send(&frames.frames[1], out, ZMQ_SNDMORE);
            zmq_msg_send(&frames.frames[2], out, 0);
            self->counters.events_forwarded++;
        }
        proto_frames_close(&frames);
    }
    return 0;
}

int broker_events_subscriptions(broker_t *self)
{
    void *in = zsock_resolve(self->events_in);
    void *out = zsock_resolve(self->events_out);
    proto_frames_t frames;
    for (int i = 0; i < S_BATCH; i++) {
        if (proto_frames_recv(&frames, out, ZMQ_DONTWAIT) != 0)
            break;
        /* XPUB hands us (un)subscriptions: one frame, 0x01 or 0x00 then the topic prefix. */
        size_t size = frames.count == 1 ? zmq_msg_size(&frames.frames[0]) : 0;
        const uint8_t *data = size ? zmq_msg_data(&frames.frames[0]) : NULL;
        if (frames.total == 1 && size >= 1 && size <= 1 + S_TOPIC_MAX &&
            (data[0] == 0 || data[0] == 1)) {
            if (data[0] == 1)
                self->counters.subscriptions++;
            else
                self->counters.unsubscriptions++;
            zmq_msg_send(&frames.frames[0], in, ZMQ_DONTWAIT);
        } else {
            self->counters.events_rejected++;
            broker_warn_input(self, "subscription_rejected", "socket=events_out");
        }
        proto_frames_close(&frames);
    }
    return 0;
}

/*  fuzz_envelope.c - libFuzzer target: arbitrary bytes as a multipart message through the
    envelope check and then every header decoder, as the broker would see them.

    Input layout: first byte = frame count (mod PROTO_FRAMES_MAX + 1), then each frame as a 1-byte length and that
    many bytes (the last frame takes whatever remains). Also feeds the raw input to every
    message decoder directly. Any crash, leak, overread or UB is a finding. */
#include "../../proto/proto.h"
#include "../../proto/proto_envelope.h"

#include <stdlib.h>
#include <string.h>

#define S_DECODE_ALL(msg)                                                                        \
    {                                                                                            \
        proto_##msg##_t *m = malloc(sizeof *m);                                                  \
        proto_decode_error_t err;                                                                \
        if (m && proto_##msg##_decode(m, data, size, &err) == 0) {                               \
            proto_buffer_t again;                                                                \
            proto_buffer_init(&again);                                                           \
            proto_##msg##_encode(m, &again);                                                     \
            proto_buffer_release(&again);                                                        \
        }                                                                                        \
        free(m);                                                                                 \
    }

static void s_decode_everything(const uint8_t *data, size_t size)
{
    PROTO_MESSAGES(S_DECODE_ALL)
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_decode_everything(data, size);
    if (size < 1)
        return 0;
    proto_frames_t frames = {0};
    int count = data[0] % (PROTO_FRAMES_MAX + 1);
    size_t at = 1;
    for (int i = 0; i < count; i++) {
        size_t len;
        if (i == count - 1)
            len = size - at;
        else {
            len = at < size ? data[at++] : 0;
            if (len > size - at)
                len = size - at;
        }
        zmq_msg_init_size(&frames.frames[i], len);
        if (len)
            memcpy(zmq_msg_data(&frames.frames[i]), data + at, len);
        at += len;
        frames.count = frames.total = i + 1;
        frames.bytes += len;
    }
    proto_envelope_t env;
    if (proto_envelope_parse(&frames, true, 1 << 20, &env) == PROTO_OK)
        s_decode_everything(env.header, env.header_size);
    proto_frames_close(&frames);
    return 0;
}

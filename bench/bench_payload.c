/*  bench_payload.c - the request bytes every benchmarked system carries (see bench.h): an
    echo request as the broker's clients send it, so that raw baselines move as many bytes. */
#include "bench.h"
#include "../proto/proto.h"

#include <stdlib.h>
#include <string.h>

uint8_t *bench_payload_new(int64_t data_size, size_t *size_p)
{
    uint8_t *data = malloc((size_t)data_size + 1);
    if (!data)
        return NULL;
    for (int64_t i = 0; i < data_size; i++)
        data[i] = (uint8_t)('a' + i % 26);
    proto_echo_request_t request = {.data = data, .data_len = (uint32_t)data_size};
    proto_buffer_t encoded;
    proto_buffer_init(&encoded);
    int rc = proto_echo_request_encode(&request, &encoded);
    free(data);
    size_t size = encoded.size < 8 ? 8 : encoded.size; /* room for a send time in raw baselines */
    uint8_t *copy = rc == 0 ? calloc(1, size) : NULL;
    if (copy)
        memcpy(copy, encoded.data, encoded.size);
    proto_buffer_release(&encoded);
    if (!copy)
        return NULL;
    *size_p = size;
    return copy;
}

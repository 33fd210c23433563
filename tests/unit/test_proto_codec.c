/*  test_proto_codec.c - the generated encoders and decoders: round trips, and strict refusal
    of wrong types, ranges, lengths, duplicates, missing fields and trailing bytes. */
#include "unit_tests.h"
#include "../../proto/proto.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static void test_request_round_trip(void **state)
{
    (void)state;
    proto_request_t in = {.id = 1ull << 40, .timeout_ms = 2500};
    proto_name_set(in.service, "jira");
    proto_name_set(in.type, "conversation.start");
    proto_buffer_t buffer;
    proto_buffer_init(&buffer);
    assert_int_equal(proto_request_encode(&in, &buffer), 0);
    const uint8_t *data = buffer.data;
    size_t size = buffer.size;
    proto_request_t out;
    proto_decode_error_t err;
    assert_int_equal(proto_request_decode(&out, data, size, &err), 0);
    assert_true(out.id == in.id);
    assert_int_equal(out.timeout_ms, 2500);
    assert_string_equal(out.service, "jira");
    assert_string_equal(out.type, "conversation.start");
    /* every strict prefix is refused, never read past */
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal(proto_request_decode(&out, data, cut, &err), -1);
    proto_buffer_release(&buffer);
}

static void test_optional_fields_and_borrowed_bytes(void **state)
{
    (void)state;
    const char *message = "queue full";
    proto_error_t in = {.id = 7, .has_message = true, .message = message, .message_len = 10};
    proto_name_set(in.code, "overloaded");
    proto_buffer_t buffer;
    proto_buffer_init(&buffer);
    assert_int_equal(proto_error_encode(&in, &buffer), 0);
    const uint8_t *data = buffer.data;
    size_t size = buffer.size;
    proto_error_t out;
    assert_int_equal(proto_error_decode(&out, data, size, NULL), 0);
    assert_true(out.has_message);
    assert_int_equal(out.message_len, 10);
    assert_memory_equal(out.message, message, 10);
    assert_true(out.message >= (const char *)data && out.message < (const char *)data + size);
    proto_buffer_release(&buffer);

    proto_error_t bare = {.id = 0};
    proto_name_set(bare.code, "x");
    assert_int_equal(proto_error_encode(&bare, &buffer), 0);
    assert_int_equal(proto_error_decode(&out, buffer.data, buffer.size, NULL), 0);
    assert_false(out.has_message);
    proto_buffer_release(&buffer);
}

static void test_heartbeat_counters_round_trip(void **state)
{
    (void)state;
    proto_heartbeat_t *in = calloc(1, sizeof *in), *out = calloc(1, sizeof *out);
    in->has_counters = true;
    in->counters_count = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(in->counters[i].name, sizeof in->counters[i].name, "c%d", i);
        in->counters[i].value = (uint64_t)i * 1000000007ull;
    }
    proto_buffer_t buffer;
    proto_buffer_init(&buffer);
    for (int i = 3; i < PROTO_COUNTERS_MAX; i++) /* big enough to outgrow the inline storage */
        snprintf(in->counters[i].name, sizeof in->counters[i].name, "counter_number_%d", i);
    in->counters_count = PROTO_COUNTERS_MAX;
    assert_int_equal(proto_heartbeat_encode(in, &buffer), 0);
    assert_true(buffer.size > PROTO_BUFFER_INLINE);
    assert_int_equal(proto_heartbeat_decode(out, buffer.data, buffer.size, NULL), 0);
    assert_int_equal(out->counters_count, PROTO_COUNTERS_MAX);
    assert_string_equal(out->counters[2].name, "c2");
    assert_true(out->counters[2].value == 2 * 1000000007ull);
    assert_string_equal(out->counters[63].name, "counter_number_63");
    proto_buffer_release(&buffer);
    free(in);
    free(out);
}

/* Packs a map from alternating key/value pairs given as builder callbacks. */
typedef struct {
    msgpack_sbuffer buffer;
    msgpack_packer pk;
} s_builder_t;

static void s_begin(s_builder_t *b, uint32_t entries)
{
    msgpack_sbuffer_init(&b->buffer);
    msgpack_packer_init(&b->pk, &b->buffer, msgpack_sbuffer_write);
    msgpack_pack_map(&b->pk, entries);
}

static void s_key(s_builder_t *b, const char *key)
{
    msgpack_pack_str(&b->pk, strlen(key));
    msgpack_pack_str_body(&b->pk, key, strlen(key));
}

static int s_decode_request(s_builder_t *b, proto_decode_error_t *err)
{
    proto_request_t out;
    int rc = proto_request_decode(&out, b->buffer.data, b->buffer.size, err);
    msgpack_sbuffer_destroy(&b->buffer);
    return rc;
}

static void s_valid_fields(s_builder_t *b, bool skip_type)
{
    s_key(b, "id");
    msgpack_pack_uint64(&b->pk, 1);
    s_key(b, "service");
    s_key(b, "echo");
    if (!skip_type) {
        s_key(b, "type");
        s_key(b, "echo.request");
    }
    s_key(b, "timeout_ms");
    msgpack_pack_uint32(&b->pk, 100);
}

static void test_decoder_refuses_bad_fields(void **state)
{
    (void)state;
    s_builder_t b;
    proto_decode_error_t err;

    s_begin(&b, 3);
    s_valid_fields(&b, true);
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.field, "type");
    assert_string_equal(err.reason, "missing");

    s_begin(&b, 5);
    s_valid_fields(&b, false);
    s_key(&b, "id");
    msgpack_pack_uint64(&b.pk, 2);
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.reason, "duplicated");

    s_begin(&b, 4);
    s_key(&b, "id");
    s_key(&b, "not a number");
    s_key(&b, "service");
    s_key(&b, "echo");
    s_key(&b, "type");
    s_key(&b, "t");
    s_key(&b, "timeout_ms");
    msgpack_pack_uint32(&b.pk, 100);
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.field, "id");
    assert_string_equal(err.reason, "wrong type");

    s_begin(&b, 4);
    s_valid_fields(&b, true);
    s_key(&b, "type");
    s_key(&b, "has space");
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.reason, "invalid characters");

    s_begin(&b, 4);
    s_valid_fields(&b, true);
    s_key(&b, "type");
    char long_name[80];
    memset(long_name, 'a', 79);
    long_name[79] = '\0';
    s_key(&b, long_name);
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.reason, "too long");

    s_begin(&b, 4);
    s_key(&b, "id");
    msgpack_pack_uint64(&b.pk, 0); /* ids start at 1 */
    s_key(&b, "service");
    s_key(&b, "echo");
    s_key(&b, "type");
    s_key(&b, "t");
    s_key(&b, "timeout_ms");
    msgpack_pack_uint32(&b.pk, 100);
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.reason, "out of range");
}

static void test_decoder_skips_unknown_fields_and_refuses_trailing_bytes(void **state)
{
    (void)state;
    s_builder_t b;
    proto_decode_error_t err;
    s_begin(&b, 5);
    s_valid_fields(&b, false);
    s_key(&b, "added_in_a_later_version");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_true(&b.pk);
    msgpack_pack_nil(&b.pk);
    assert_int_equal(s_decode_request(&b, &err), 0);

    s_begin(&b, 4);
    s_valid_fields(&b, false);
    msgpack_pack_nil(&b.pk);
    assert_int_equal(s_decode_request(&b, &err), -1);
    assert_string_equal(err.reason, "trailing bytes");

    const uint8_t not_a_map[] = {0x93, 1, 2, 3};
    proto_request_t out;
    assert_int_equal(proto_request_decode(&out, not_a_map, sizeof not_a_map, &err), -1);
    assert_int_equal(proto_request_decode(&out, NULL, 0, &err), -1);
}

static void test_random_bytes_never_crash_a_decoder(void **state)
{
    (void)state;
    srandom(42);
    uint8_t buffer[64];
    proto_heartbeat_t *heartbeat = malloc(sizeof *heartbeat);
    for (int round = 0; round < 200000; round++) {
        size_t size = (size_t)(random() % (long)sizeof buffer);
        for (size_t i = 0; i < size; i++)
            buffer[i] = (uint8_t)random();
        if (size)
            buffer[0] = (uint8_t)(0x80 | (random() % 6)); /* mostly small maps */
        proto_request_t request;
        proto_error_t error;
        proto_request_decode(&request, buffer, size, NULL);
        proto_error_decode(&error, buffer, size, NULL);
        proto_heartbeat_decode(heartbeat, buffer, size, NULL);
    }
    free(heartbeat);
}

int test_proto_codec_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_optional_fields_and_borrowed_bytes),
        cmocka_unit_test(test_heartbeat_counters_round_trip),
        cmocka_unit_test(test_decoder_refuses_bad_fields),
        cmocka_unit_test(test_decoder_skips_unknown_fields_and_refuses_trailing_bytes),
        cmocka_unit_test(test_random_bytes_never_crash_a_decoder),
    };
    return cmocka_run_group_tests_name("proto_codec", tests, NULL, NULL);
}

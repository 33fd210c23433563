/*  test_proto_envelope.c - envelope shape checks: signature, version, command, frame count,
    size limit; and a send/receive round trip over inproc sockets. */
#include "unit_tests.h"
#include "../../proto/proto_envelope.h"

#include <string.h>

/* Builds frames from (data, size) pairs; data NULL means size zero bytes. */
static void s_frames(proto_frames_t *f, int count, const char **parts, const size_t *sizes)
{
    f->count = f->total = count;
    f->bytes = 0;
    for (int i = 0; i < count; i++) {
        zmq_msg_init_size(&f->frames[i], sizes[i]);
        memcpy(zmq_msg_data(&f->frames[i]), parts[i], sizes[i]);
        f->bytes += sizes[i];
    }
}

static proto_reject_t s_parse(int count, const char **parts, const size_t *sizes, size_t max)
{
    proto_frames_t f;
    s_frames(&f, count, parts, sizes);
    proto_envelope_t env;
    proto_reject_t r = proto_envelope_parse(&f, true, max, &env);
    proto_frames_close(&f);
    return r;
}

static void test_envelope_checks_shape(void **state)
{
    (void)state;
    const char *ok[] = {"id", "PARLEY1\x02\x80", "payload"};
    const size_t ok_sizes[] = {2, 9, 7};
    assert_int_equal(s_parse(3, ok, ok_sizes, 1024), PROTO_OK);
    assert_int_equal(s_parse(2, ok, ok_sizes, 1024), PROTO_BAD_FRAMES); /* no payload */
    assert_int_equal(s_parse(3, ok, ok_sizes, 10), PROTO_OVERSIZED);

    const char *v2[] = {"id", "PARLEY2\x02\x80", "p"};
    const size_t v2_sizes[] = {2, 9, 1};
    assert_int_equal(s_parse(3, v2, v2_sizes, 1024), PROTO_BAD_VERSION);

    const char *http[] = {"id", "GET / HTTP/1.1", "p"};
    const size_t http_sizes[] = {2, 14, 1};
    assert_int_equal(s_parse(3, http, http_sizes, 1024), PROTO_BAD_SIGNATURE);

    const char *short_sig[] = {"id", "PARL"};
    const size_t short_sizes[] = {2, 4};
    assert_int_equal(s_parse(2, short_sig, short_sizes, 1024), PROTO_BAD_SIGNATURE);

    const char *no_command[] = {"id", "PARLEY1"};
    const size_t no_command_sizes[] = {2, 7};
    assert_int_equal(s_parse(2, no_command, no_command_sizes, 1024), PROTO_BAD_COMMAND);

    const char *bad_cmd[] = {"id", "PARLEY1\x63\x80"};
    const size_t bad_cmd_sizes[] = {2, 9};
    assert_int_equal(s_parse(2, bad_cmd, bad_cmd_sizes, 1024), PROTO_BAD_COMMAND);

    const char *hb_with_payload[] = {"id", "PARLEY1\x05\x80", "extra"};
    const size_t hb_sizes[] = {2, 9, 5};
    assert_int_equal(s_parse(3, hb_with_payload, hb_sizes, 1024), PROTO_BAD_FRAMES);
    assert_int_equal(s_parse(2, hb_with_payload, hb_sizes, 1024), PROTO_OK);
    assert_int_equal(s_parse(1, ok, ok_sizes, 1024), PROTO_BAD_FRAMES);
}

static void test_envelope_send_and_receive(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(a, "inproc://envelope-test"), 0);
    assert_int_equal(zmq_connect(b, "inproc://envelope-test"), 0);
    zmq_msg_t payload;
    zmq_msg_init_size(&payload, 3);
    memcpy(zmq_msg_data(&payload), "abc", 3);
    proto_reply_t reply = {.id = 42};
    proto_buffer_t envelope;
    proto_envelope_begin(&envelope, PROTO_REPLY);
    assert_int_equal(proto_reply_encode(&reply, &envelope), 0);
    assert_int_equal(proto_envelope_send(a, NULL, &envelope, &payload, 0), 0);
    proto_buffer_release(&envelope);
    zmq_msg_close(&payload);

    proto_frames_t frames;
    assert_int_equal(proto_frames_recv(&frames, b, 0), 0);
    proto_envelope_t env;
    assert_int_equal(proto_envelope_parse(&frames, false, 1024, &env), PROTO_OK);
    assert_int_equal(env.command, PROTO_REPLY);
    assert_int_equal(zmq_msg_size(env.payload), 3);
    proto_reply_t decoded;
    assert_int_equal(proto_reply_decode(&decoded, env.header, env.header_size, NULL), 0);
    assert_int_equal(decoded.id, 42);
    proto_frames_close(&frames);

    /* a message of many frames is drained whole: the next one starts clean */
    for (int i = 0; i < 9; i++)
        zmq_send(a, "x", 1, i < 8 ? ZMQ_SNDMORE : 0);
    assert_int_equal(proto_frames_recv(&frames, b, 0), 0);
    assert_int_equal(frames.total, 9);
    assert_int_equal(frames.count, PROTO_FRAMES_MAX);
    assert_int_equal(proto_envelope_parse(&frames, false, 1024, &env), PROTO_BAD_FRAMES);
    proto_frames_close(&frames);
    assert_int_equal(proto_frames_recv(&frames, b, ZMQ_DONTWAIT), -1);

    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(ctx);
}

int test_proto_envelope_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_checks_shape),
        cmocka_unit_test(test_envelope_send_and_receive),
    };
    return cmocka_run_group_tests_name("proto_envelope", tests, NULL, NULL);
}

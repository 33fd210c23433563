/*  test_proto_reader.c - the strict MessagePack reader refuses what could hurt us. */
#include "unit_tests.h"
#include "../../proto/proto_reader.h"

#include <string.h>

static void test_huge_declared_array_is_refused_without_allocating(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0xdd, 0xff, 0xff, 0xff, 0xf0, 0x01}; /* array32 of ~4G items */
    proto_reader_t r;
    proto_reader_init(&r, bytes, sizeof bytes);
    uint32_t count;
    assert_int_equal(proto_read_array(&r, &count), -1);
    assert_int_equal(proto_reader_remaining(&r), sizeof bytes); /* cursor untouched */
    const uint8_t map[] = {0xdf, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03};
    proto_reader_init(&r, map, sizeof map); /* 2 entries need 4 bytes, 3 remain */
    assert_int_equal(proto_read_map(&r, &count), -1);
}

static void test_string_longer_than_buffer_is_refused(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0xda, 0x00, 0x10, 'a', 'b'};
    proto_reader_t r;
    proto_reader_init(&r, bytes, sizeof bytes);
    const char *s;
    uint32_t len;
    assert_int_equal(proto_read_str(&r, &s, &len), -1);
    const uint8_t ok[] = {0xa2, 'h', 'i'};
    proto_reader_init(&r, ok, sizeof ok);
    assert_int_equal(proto_read_str(&r, &s, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "hi", 2);
    assert_int_equal(proto_reader_remaining(&r), 0);
}

static void test_integers_accept_every_non_negative_encoding(void **state)
{
    (void)state;
    const uint8_t forms[][9] = {{0x05}, {0xcc, 0x05}, {0xcd, 0x00, 0x05}, {0xd0, 0x05},
                                {0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05}};
    const size_t sizes[] = {1, 2, 3, 2, 9};
    for (int i = 0; i < 5; i++) {
        proto_reader_t r;
        proto_reader_init(&r, forms[i], sizes[i]);
        uint64_t v = 0;
        assert_int_equal(proto_read_uint(&r, &v), 0);
        assert_int_equal(v, 5);
    }
    const uint8_t negative[] = {0xd0, 0xff};
    proto_reader_t r;
    proto_reader_init(&r, negative, sizeof negative);
    uint64_t v;
    assert_int_equal(proto_read_uint(&r, &v), -1);
    const uint8_t truncated[] = {0xcf, 0x00, 0x01};
    proto_reader_init(&r, truncated, sizeof truncated);
    assert_int_equal(proto_read_uint(&r, &v), -1);
}

static void test_skip_stops_at_nesting_limit(void **state)
{
    (void)state;
    uint8_t deep[64];
    memset(deep, 0x91, sizeof deep); /* fixarray of one, nested 63 times */
    deep[63] = 0x01;
    proto_reader_t r;
    proto_reader_init(&r, deep, sizeof deep);
    assert_int_equal(proto_reader_skip(&r), -1);
    const uint8_t shallow[] = {0x92, 0x81, 0xa1, 'k', 0xc3, 0xc4, 0x01, 0x00};
    proto_reader_init(&r, shallow, sizeof shallow);
    assert_int_equal(proto_reader_skip(&r), 0);
    assert_int_equal(proto_reader_remaining(&r), 0);
}

static void test_reserved_byte_is_refused(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0xc1};
    proto_reader_t r;
    proto_reader_init(&r, bytes, sizeof bytes);
    assert_int_equal(proto_reader_skip(&r), -1);
}

int test_proto_reader_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_declared_array_is_refused_without_allocating),
        cmocka_unit_test(test_string_longer_than_buffer_is_refused),
        cmocka_unit_test(test_integers_accept_every_non_negative_encoding),
        cmocka_unit_test(test_skip_stops_at_nesting_limit),
        cmocka_unit_test(test_reserved_byte_is_refused),
    };
    return cmocka_run_group_tests_name("proto_reader", tests, NULL, NULL);
}

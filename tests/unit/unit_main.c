/*  unit_main.c - runs every C unit test group; exits non-zero when any test failed. */
#include "unit_tests.h"

int main(void)
{
    int failed = 0;
    failed += test_proto_reader_group();
    failed += test_proto_codec_group();
    failed += test_proto_envelope_group();
    failed += test_deadline_heap_group();
    failed += test_latency_histogram_group();
    failed += test_config_group();
    failed += test_secrets_group();
    failed += test_tz_zone_group();
    failed += test_schedule_group();
    failed += test_jwt_group();
    failed += test_connect_qsh_group();
    failed += test_adf_group();
    failed += test_http_multi_group();
    failed += test_json_writer_group();
    failed += test_gateway_topics_group();
    failed += test_pid_cache_group();
    return failed ? 1 : 0;
}

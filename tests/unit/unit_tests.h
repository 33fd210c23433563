/*  unit_tests.h - the C unit test groups, one per source file under test; unit_main.c runs
    them all (cmocka). */
#ifndef UNIT_TESTS_H
#define UNIT_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

int test_proto_reader_group(void);
int test_proto_codec_group(void);
int test_proto_envelope_group(void);
int test_deadline_heap_group(void);
int test_latency_histogram_group(void);
int test_config_group(void);
int test_secrets_group(void);
int test_tz_zone_group(void);
int test_schedule_group(void);
int test_jwt_group(void);
int test_connect_qsh_group(void);
int test_adf_group(void);
int test_http_multi_group(void);
int test_json_writer_group(void);
int test_gateway_topics_group(void);
int test_pid_cache_group(void);

#endif

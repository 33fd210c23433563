/*  test_latency_histogram.c - percentiles are within one bucket (12.5%) above the truth, never
    below, and old slots leave the window. */
#include "unit_tests.h"
#include "../../common/latency_histogram.h"

static void test_percentiles_bound_the_truth(void **state)
{
    (void)state;
    latency_histogram_t *h = latency_histogram_new();
    assert_int_equal(latency_histogram_percentile(h, 50, 0), 0);
    for (uint64_t v = 1; v <= 10000; v++)
        latency_histogram_record(h, v, 1000);
    uint64_t p50 = latency_histogram_percentile(h, 50, 1000);
    uint64_t p99 = latency_histogram_percentile(h, 99, 1000);
    assert_true(p50 >= 5000 && p50 <= 5000 * 1.125 + 1);
    assert_true(p99 >= 9900 && p99 <= 9900 * 1.125 + 1);
    assert_int_equal(latency_histogram_percentile(h, 100, 1000) >= 10000, 1);
    assert_int_equal(latency_histogram_count(h), 10000);
    assert_int_equal(latency_histogram_sum_us(h), 10000ull * 10001 / 2);
    /* a minute later the window is empty again; lifetime totals stay */
    assert_int_equal(latency_histogram_percentile(h, 50, 1000 + LATENCY_WINDOW_MS), 0);
    latency_histogram_record(h, 7, 1000 + LATENCY_WINDOW_MS);
    assert_int_equal(latency_histogram_percentile(h, 50, 1000 + LATENCY_WINDOW_MS), 7);
    latency_histogram_record(h, UINT64_MAX, 1000 + LATENCY_WINDOW_MS); /* no overflow */
    latency_histogram_destroy(&h);
    assert_null(h);
}

int test_latency_histogram_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_bound_the_truth),
    };
    return cmocka_run_group_tests_name("latency_histogram", tests, NULL, NULL);
}

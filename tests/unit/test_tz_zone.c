/*  test_tz_zone.c - zones of the tz database give the right UTC offset and the right next
    transition, both inside a TZif file's table and from its footer rule, and the cache refuses
    bad names. Expected instants were computed with GNU `date -u -d '...' +%s`. */
#include "../../common/tz_zone.h"
#include "unit_tests.h"

#include <string.h>

#define S_HOUR 3600

static tz_zones_t *s_zones_new(void)
{
    char why[256] = "";
    tz_zones_t *zones = tz_zones_new(NULL, why, sizeof why);
    if (!zones)
        fail_msg("tz_zones_new: %s", why);
    return zones;
}

static void test_berlin_offsets_and_transitions_in_2026(void **state)
{
    (void)state;
    tz_zones_t *zones = s_zones_new();
    char why[256] = "";
    const tz_zone_t *berlin = tz_zones_require(zones, "Europe/Berlin", why, sizeof why);
    assert_non_null(berlin);
    assert_string_equal(tz_zone_name(berlin), "Europe/Berlin");
    /* The cache hands back the same zone. */
    assert_ptr_equal(tz_zones_require(zones, "Europe/Berlin", why, sizeof why), berlin);

    const int64_t winter = 1768478400; /* 2026-01-15 12:00 UTC */
    const int64_t spring = 1774746000; /* 2026-03-29 01:00 UTC: CET -> CEST */
    const int64_t autumn = 1792890000; /* 2026-10-25 01:00 UTC: CEST -> CET */
    assert_int_equal(tz_zone_offset_at(berlin, winter), 1 * S_HOUR);
    assert_int_equal(tz_zone_offset_at(berlin, spring - 1), 1 * S_HOUR);
    assert_int_equal(tz_zone_offset_at(berlin, spring), 2 * S_HOUR);
    assert_int_equal(tz_zone_offset_at(berlin, autumn - 1), 2 * S_HOUR);
    assert_int_equal(tz_zone_offset_at(berlin, autumn), 1 * S_HOUR);
    assert_int_equal(tz_zone_next_transition(berlin, winter), spring);
    assert_int_equal(tz_zone_next_transition(berlin, spring), autumn);
    tz_zones_destroy(&zones);
    assert_null(zones);
}

static void test_footer_rule_governs_instants_after_the_table(void **state)
{
    (void)state;
    tz_zones_t *zones = s_zones_new();
    char why[256] = "";
    const tz_zone_t *berlin = tz_zones_require(zones, "Europe/Berlin", why, sizeof why);
    assert_non_null(berlin);
    const int64_t spring_2100 = 4109878800; /* 2100-03-28 01:00 UTC */
    assert_int_equal(tz_zone_offset_at(berlin, spring_2100 - 1), 1 * S_HOUR);
    assert_int_equal(tz_zone_offset_at(berlin, spring_2100), 2 * S_HOUR);
    assert_int_equal(tz_zone_next_transition(berlin, spring_2100 - 30 * 86400), spring_2100);

    const tz_zone_t *utc = tz_zones_require(zones, "Etc/UTC", why, sizeof why);
    assert_non_null(utc);
    assert_int_equal(tz_zone_offset_at(utc, spring_2100), 0);
    assert_true(tz_zone_next_transition(utc, spring_2100) == INT64_MAX);
    tz_zones_destroy(&zones);
}

static void test_zones_require_refuses_bad_names_with_a_reason(void **state)
{
    (void)state;
    tz_zones_t *zones = s_zones_new();
    const char *bad[] = {"",          "/etc/localtime",   "../etc/passwd", "Europe/",
                         "localtime", "Nowhere/Atlantis", "Europe/Ber lin"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[256] = "";
        if (tz_zones_require(zones, bad[i], why, sizeof why))
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(why) > 0);
    }
    tz_zones_destroy(&zones);
    tz_zones_destroy(&zones); /* NULL is accepted */
}

int test_tz_zone_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_berlin_offsets_and_transitions_in_2026),
        cmocka_unit_test(test_footer_rule_governs_instants_after_the_table),
        cmocka_unit_test(test_zones_require_refuses_bad_names_with_a_reason),
    };
    return cmocka_run_group_tests_name("tz_zone", tests, NULL, NULL);
}

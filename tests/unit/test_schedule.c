/*  test_schedule.c - weekly schedules open and close at the right instants in IANA zones,
    across both 2026 DST changes in Europe and the US, and refuse bad text and zone names.

    Expected instants are UTC timestamps computed outside the code under test (GNU
    `date -u -d '2026-03-29 01:00 UTC' +%s`) and written down with their wall-clock meaning.
    The sweep tests use glibc's localtime_r with TZ set as an independent oracle; that is the
    only place TZ is touched, and it is restored afterwards. */
#define _GNU_SOURCE /* setenv, mkdtemp, nftw */
#include "../../common/schedule.h"
#include "unit_tests.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_HOUR 3600
#define S_DAY 86400

static schedule_zones_t *s_zones_new(void)
{
    char why[256] = "";
    schedule_zones_t *zones = schedule_zones_new(NULL, why, sizeof why);
    if (!zones)
        fail_msg("schedule_zones_new: %s", why);
    return zones;
}

static schedule_t *s_schedule_new(schedule_zones_t *zones, const char *text)
{
    char why[256] = "";
    schedule_t *schedule = schedule_new(zones, text, why, sizeof why);
    if (!schedule)
        fail_msg("schedule_new(\"%s\"): %s", text, why);
    return schedule;
}

/* Asserts schedule_is_open at each instant of a list: {utc, expected}. */
typedef struct {
    time_t at;
    int open;
} s_expect_t;

static void s_expect_open(const schedule_t *schedule, const s_expect_t *expect, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int open = schedule_is_open(schedule, expect[i].at);
        if (open != expect[i].open)
            fail_msg("%s: at %lld is_open=%d, expected %d", schedule_zone(schedule),
                     (long long)expect[i].at, open, expect[i].open);
    }
}

/* ---------------------------------------------------------------- text */

static void test_schedule_text_round_trips(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    const char *texts[] = {
        "Europe/Berlin|mon-fri 09:00-17:00,sat 10:00-14:00",
        "America/New_York|",
        "Asia/Kolkata|sun-thu 22:00-02:00",
        "Etc/UTC|mon 00:00-24:00,tue 12:00-00:00",
        "America/Argentina/Buenos_Aires|wed 08:15-08:16",
        "Etc/GMT+5|sat-sun 00:00-24:00,mon-fri 18:30-07:45",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        schedule_t *schedule = s_schedule_new(zones, texts[i]);
        char *text = schedule_format(schedule);
        assert_non_null(text);
        assert_string_equal(text, texts[i]);
        free(text);
        schedule_destroy(&schedule);
        assert_null(schedule);
    }
    schedule_destroy(NULL);
    schedule_zones_destroy(&zones);
    assert_null(zones);
    schedule_zones_destroy(NULL);
}

static void test_schedule_refuses_malformed_text_with_a_reason(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    const char *bad[] = {
        "",
        "Europe/Berlin",
        "|mon 09:00-17:00",
        "Europe/Berlin|mon 9:00-17:00",
        "Europe/Berlin|Mon 09:00-17:00",
        "Europe/Berlin|mo 09:00-17:00",
        "Europe/Berlin|monday 09:00-17:00",
        "Europe/Berlin|mon 09:00-17:60",
        "Europe/Berlin|mon 24:00-17:00",
        "Europe/Berlin|mon 09:00-24:01",
        "Europe/Berlin|mon 09:00-25:00",
        "Europe/Berlin|mon 09:00-09:00",
        "Europe/Berlin|mon-mon 09:00-10:00",
        "Europe/Berlin|mon 09:00-17:00,",
        "Europe/Berlin|,mon 09:00-17:00",
        "Europe/Berlin|mon  09:00-17:00",
        "Europe/Berlin|mon 09:00-17:00 ",
        "Europe/Berlin| mon 09:00-17:00",
        "Europe/Berlin|mon 09:00 - 17:00",
        "Europe/Berlin|mon 09:00-17:00|tue 09:00-17:00",
        "Europe/Berlin|mon,tue 09:00-17:00",
        "Europe/Berlin|mon 09:00",
        "Europe/Berlin|mon 09:00-",
        "Europe/Berlin|mon-",
        "Europe/Berlin|mon 09:00-17:00;tue 09:00-17:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[256] = "";
        schedule_t *schedule = schedule_new(zones, bad[i], why, sizeof why);
        if (schedule)
            fail_msg("accepted \"%s\"", bad[i]);
        if (strncmp(why, "schedule: ", 10) != 0)
            fail_msg("\"%s\": no reason given (\"%s\")", bad[i], why);
    }

    /* the reason points at the offending column */
    char why[256];
    assert_null(schedule_new(zones, "Europe/Berlin|mon-fri 09:00-17:60", why, sizeof why));
    assert_non_null(strstr(why, "column 29:"));
    assert_null(
        schedule_new(zones, "Europe/Berlin|mon-fri 09:00-17:00,sat 10:00", why, sizeof why));
    assert_non_null(strstr(why, "column 44:"));
    assert_null(schedule_new(zones, NULL, why, sizeof why));

    /* limits: 32 groups pass, 33 do not; text over 1024 bytes does not */
    char text[2048] = "Etc/UTC|";
    for (int i = 0; i < SCHEDULE_MAX_GROUPS; i++)
        strcat(text, i ? ",mon 01:00-02:00" : "mon 01:00-02:00");
    schedule_t *many = s_schedule_new(zones, text);
    schedule_destroy(&many);
    strcat(text, ",mon 01:00-02:00");
    assert_null(schedule_new(zones, text, why, sizeof why));
    assert_non_null(strstr(why, "more than 32 groups"));
    memset(text, 0, sizeof text);
    strcpy(text, "Etc/UTC|mon 01:00-02:00");
    memset(text + strlen(text), ' ', SCHEDULE_MAX_TEXT + 10 - strlen(text));
    assert_null(schedule_new(zones, text, why, sizeof why));
    assert_non_null(strstr(why, "longer than 1024"));
    schedule_zones_destroy(&zones);
}

static void test_schedule_refuses_unknown_zones_and_path_tricks(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    char long_name[SCHEDULE_MAX_ZONE_NAME + 2];
    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *bad[] = {
        "Mars/Olympus_Mons",
        "europe/berlin",
        "../zoneinfo/Europe/Berlin",
        "Europe/../Europe/Berlin",
        "./Europe/Berlin",
        "/usr/share/zoneinfo/Europe/Berlin",
        "/etc/passwd",
        "Europe//Berlin",
        "Europe/Berlin/",
        "Europe/Berlin ",
        "Europe/Be\x01rlin",
        "Europe/Berlin\n",
        "Europe",              /* a directory */
        "zone.tab",            /* in the database directory, not a TZif file */
        "tzdata.zi",           /* likewise */
        "localtime",           /* the host's zone (/etc/localtime), not an IANA name */
        "posixrules",          /* likewise */
        "right/Europe/Berlin", /* counts leap seconds */
        ".hidden",
        "",
        long_name,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[256] = "";
        if (schedule_zones_require(zones, bad[i], why, sizeof why) == 0)
            fail_msg("accepted zone \"%s\"", bad[i]);
        assert_true(why[0] != '\0');
    }
    /* the shape is checked before the file system is asked */
    const struct {
        const char *name, *reason;
    } shapes[] = {
        {"../zoneinfo/Europe/Berlin", "component starting with '.'"},
        {"/etc/passwd", "leading '/'"},
        {"Europe/Berlin ", "character other than"},
        {"Europe/Be\x01rlin", "character other than"},
        {"Europe/Berlin/", "ends with '/'"},
    };
    char why[256];
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        assert_int_equal(schedule_zones_require(zones, shapes[i].name, why, sizeof why), -1);
        if (!strstr(why, shapes[i].reason))
            fail_msg("\"%s\": \"%s\"", shapes[i].name, why);
    }
    assert_null(schedule_new(zones, "Mars/Olympus_Mons|mon 09:00-17:00", why, sizeof why));
    assert_string_equal(why, "schedule: unknown time zone 'Mars/Olympus_Mons'");
    assert_null(schedule_new(zones, "../../../etc/passwd|mon 09:00-17:00", why, sizeof why));
    assert_null(schedule_zones_new("/nonexistent/zoneinfo", why, sizeof why));
    assert_non_null(strstr(why, "/nonexistent/zoneinfo"));

    /* links inside the database are fine and evaluate like their target */
    assert_int_equal(schedule_zones_require(zones, "US/Eastern", why, sizeof why), 0);
    schedule_t *berlin = s_schedule_new(zones, "Europe/Berlin|mon-fri 09:00-17:00");
    assert_int_equal(schedule_is_open_in_zone(berlin, "US/Eastern", 1767643200), 1);
    assert_int_equal(schedule_is_open_in_zone(berlin, "Mars/Olympus_Mons", 1767643200), -1);
    assert_int_equal(schedule_is_open_in_zone(berlin, "../Europe/Berlin", 1767643200), -1);
    assert_int_equal(schedule_next_change_in_zone(berlin, "Mars/Olympus_Mons", 1767643200), -1);
    schedule_destroy(&berlin);
    schedule_zones_destroy(&zones);
}

/* ---------------------------------------------------------------- fixed instants */

static void test_berlin_office_hours_in_winter_and_summer(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *s = s_schedule_new(zones, "Europe/Berlin|mon-fri 09:00-17:00,sat 10:00-14:00");
    const s_expect_t expect[] = {
        {1767599999, 0}, /* 2026-01-05T07:59:59Z  mon 08:59:59 CET */
        {1767600000, 1}, /* 2026-01-05T08:00:00Z  mon 09:00 CET */
        {1767628799, 1}, /* 2026-01-05T15:59:59Z  mon 16:59:59 CET */
        {1767628800, 0}, /* 2026-01-05T16:00:00Z  mon 17:00 CET */
        {1783321199, 0}, /* 2026-07-06T06:59:59Z  mon 08:59:59 CEST */
        {1783321200, 1}, /* 2026-07-06T07:00:00Z  mon 09:00 CEST */
        {1783756800, 1}, /* 2026-07-11T08:00:00Z  sat 10:00 CEST */
        {1783771199, 1}, /* 2026-07-11T11:59:59Z  sat 13:59:59 CEST */
        {1783771200, 0}, /* 2026-07-11T12:00:00Z  sat 14:00 CEST */
        {1783850400, 0}, /* 2026-07-12T10:00:00Z  sun 12:00 CEST */
    };
    s_expect_open(s, expect, sizeof expect / sizeof *expect);
    assert_int_equal(schedule_next_change(s, 1767599999), 1767600000);
    assert_int_equal(schedule_next_change(s, 1767600000), 1767628800);
    schedule_destroy(&s);
    schedule_zones_destroy(&zones);
}

/* EU 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST; 02:00-03:00 local never happens. */
static void test_berlin_spring_forward_2026(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *gap = s_schedule_new(zones, "Europe/Berlin|sun 02:00-03:00");
    const s_expect_t in_gap[] = {
        {1774742400, 0}, /* 2026-03-29T00:00:00Z  01:00 CET */
        {1774745999, 0}, /* 2026-03-29T00:59:59Z  01:59:59 CET */
        {1774746000, 0}, /* 2026-03-29T01:00:00Z  03:00 CEST */
        {1774749600, 0}, /* 2026-03-29T02:00:00Z  04:00 CEST */
        {1775347200, 1}, /* 2026-04-05T00:00:00Z  next sunday 02:00 CEST */
    };
    s_expect_open(gap, in_gap, sizeof in_gap / sizeof *in_gap);
    /* the interval that vanished is skipped: the next opening is a week later */
    assert_int_equal(schedule_next_change(gap, 1774742400), 1775347200);

    schedule_t *before = s_schedule_new(zones, "Europe/Berlin|sun 01:30-02:30");
    const s_expect_t partly_before[] = {
        {1774744199, 0}, /* 2026-03-29T00:29:59Z  01:29:59 CET */
        {1774744200, 1}, /* 2026-03-29T00:30:00Z  01:30 CET */
        {1774745999, 1}, /* 2026-03-29T00:59:59Z  01:59:59 CET */
        {1774746000, 0}, /* 2026-03-29T01:00:00Z  03:00 CEST: the rest never happens */
    };
    s_expect_open(before, partly_before, sizeof partly_before / sizeof *partly_before);
    assert_int_equal(schedule_next_change(before, 1774742400), 1774744200);
    assert_int_equal(schedule_next_change(before, 1774744200), 1774746000);

    schedule_t *after = s_schedule_new(zones, "Europe/Berlin|sun 02:30-03:30");
    const s_expect_t partly_after[] = {
        {1774745999, 0}, /* 2026-03-29T00:59:59Z  01:59:59 CET */
        {1774746000, 1}, /* 2026-03-29T01:00:00Z  03:00 CEST */
        {1774747799, 1}, /* 2026-03-29T01:29:59Z  03:29:59 CEST */
        {1774747800, 0}, /* 2026-03-29T01:30:00Z  03:30 CEST */
    };
    s_expect_open(after, partly_after, sizeof partly_after / sizeof *partly_after);
    /* opens at the jump itself, not at a wall-clock 02:30 that does not exist */
    assert_int_equal(schedule_next_change(after, 1774744200), 1774746000);
    assert_int_equal(schedule_next_change(after, 1774746000), 1774747800);
    schedule_destroy(&gap);
    schedule_destroy(&before);
    schedule_destroy(&after);
    schedule_zones_destroy(&zones);
}

/* EU 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET; 02:00-03:00 local happens twice. */
static void test_berlin_fall_back_2026(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *half = s_schedule_new(zones, "Europe/Berlin|sun 02:00-02:30");
    const s_expect_t twice[] = {
        {1792884600, 0}, /* 2026-10-24T23:30:00Z  sun 01:30 CEST */
        {1792886400, 1}, /* 2026-10-25T00:00:00Z  02:00 CEST */
        {1792887300, 1}, /* 2026-10-25T00:15:00Z  02:15 CEST */
        {1792889100, 0}, /* 2026-10-25T00:45:00Z  02:45 CEST */
        {1792890000, 1}, /* 2026-10-25T01:00:00Z  02:00 CET, the second time */
        {1792890900, 1}, /* 2026-10-25T01:15:00Z  02:15 CET */
        {1792892700, 0}, /* 2026-10-25T01:45:00Z  02:45 CET */
    };
    s_expect_open(half, twice, sizeof twice / sizeof *twice);
    assert_int_equal(schedule_next_change(half, 1792884600), 1792886400);
    assert_int_equal(schedule_next_change(half, 1792886400), 1792888200); /* 00:30Z */
    assert_int_equal(schedule_next_change(half, 1792889100), 1792890000); /* reopens 01:00Z */
    assert_int_equal(schedule_next_change(half, 1792890000), 1792891800); /* 01:30Z */

    schedule_t *hour = s_schedule_new(zones, "Europe/Berlin|sun 02:00-03:00");
    const s_expect_t two_hours[] = {
        {1792886399, 0}, /* 2026-10-24T23:59:59Z  01:59:59 CEST */
        {1792888200, 1}, /* 2026-10-25T00:30:00Z  02:30 CEST */
        {1792890000, 1}, /* 2026-10-25T01:00:00Z  02:00 CET */
        {1792891800, 1}, /* 2026-10-25T01:30:00Z  02:30 CET */
        {1792893600, 0}, /* 2026-10-25T02:00:00Z  03:00 CET */
    };
    s_expect_open(hour, two_hours, sizeof two_hours / sizeof *two_hours);
    /* the clock going back is not a change: open without a break until 02:00Z */
    assert_int_equal(schedule_next_change(hour, 1792888200), 1792893600);
    schedule_destroy(&half);
    schedule_destroy(&hour);
    schedule_zones_destroy(&zones);
}

/* US 2026-03-08 02:00 EST (07:00 UTC) becomes 03:00 EDT. */
static void test_new_york_spring_forward_2026(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *gap = s_schedule_new(zones, "America/New_York|sun 02:00-03:00");
    const s_expect_t in_gap[] = {
        {1772951400, 0}, /* 2026-03-08T06:30:00Z  01:30 EST */
        {1772953199, 0}, /* 2026-03-08T06:59:59Z  01:59:59 EST */
        {1772953200, 0}, /* 2026-03-08T07:00:00Z  03:00 EDT */
        {1772955000, 0}, /* 2026-03-08T07:30:00Z  03:30 EDT */
    };
    s_expect_open(gap, in_gap, sizeof in_gap / sizeof *in_gap);

    schedule_t *over = s_schedule_new(zones, "America/New_York|sun 01:00-02:30");
    const s_expect_t partly[] = {
        {1772951400, 1}, /* 2026-03-08T06:30:00Z  01:30 EST */
        {1772953199, 1}, /* 2026-03-08T06:59:59Z  01:59:59 EST */
        {1772953200, 0}, /* 2026-03-08T07:00:00Z  03:00 EDT */
    };
    s_expect_open(over, partly, sizeof partly / sizeof *partly);
    assert_int_equal(schedule_next_change(over, 1772951400), 1772953200);

    /* office hours: friday's close to monday's open spans the change (now 4 h after UTC) */
    schedule_t *office = s_schedule_new(zones, "America/New_York|mon-fri 09:00-17:00");
    assert_int_equal(schedule_is_open(office, 1772834400), 0); /* 2026-03-06T22:00Z fri 17:00 EST */
    assert_int_equal(schedule_next_change(office, 1772834400),
                     1773061200); /* 2026-03-09T13:00Z mon 09:00 EDT */
    assert_int_equal(schedule_is_open(office, 1773061200), 1);
    assert_int_equal(schedule_is_open(office, 1773061199), 0);
    schedule_destroy(&gap);
    schedule_destroy(&over);
    schedule_destroy(&office);
    schedule_zones_destroy(&zones);
}

/* US 2026-11-01 02:00 EDT (06:00 UTC) becomes 01:00 EST; 01:00-02:00 local happens twice. */
static void test_new_york_fall_back_2026(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *hour = s_schedule_new(zones, "America/New_York|sun 01:00-02:00");
    const s_expect_t twice[] = {
        {1793509199, 0}, /* 2026-11-01T04:59:59Z  00:59:59 EDT */
        {1793509200, 1}, /* 2026-11-01T05:00:00Z  01:00 EDT */
        {1793511000, 1}, /* 2026-11-01T05:30:00Z  01:30 EDT */
        {1793512800, 1}, /* 2026-11-01T06:00:00Z  01:00 EST */
        {1793514600, 1}, /* 2026-11-01T06:30:00Z  01:30 EST */
        {1793516400, 0}, /* 2026-11-01T07:00:00Z  02:00 EST */
    };
    s_expect_open(hour, twice, sizeof twice / sizeof *twice);
    assert_int_equal(schedule_next_change(hour, 1793509200), 1793516400);

    schedule_t *quarter = s_schedule_new(zones, "America/New_York|sun 01:15-01:45");
    const s_expect_t quarters[] = {
        {1793510100, 1}, /* 2026-11-01T05:15:00Z  01:15 EDT */
        {1793511900, 0}, /* 2026-11-01T05:45:00Z  01:45 EDT */
        {1793512800, 0}, /* 2026-11-01T06:00:00Z  01:00 EST */
        {1793513700, 1}, /* 2026-11-01T06:15:00Z  01:15 EST */
        {1793515500, 0}, /* 2026-11-01T06:45:00Z  01:45 EST */
    };
    s_expect_open(quarter, quarters, sizeof quarters / sizeof *quarters);
    assert_int_equal(schedule_next_change(quarter, 1793511900), 1793513700);

    /* now 5 h after UTC again: friday 17:00 EDT to monday 09:00 EST */
    schedule_t *office = s_schedule_new(zones, "America/New_York|mon-fri 09:00-17:00");
    assert_int_equal(schedule_next_change(office, 1793394000),
                     1793628000); /* 2026-10-30T21:00Z fri 17:00 EDT -> 2026-11-02T14:00Z */
    schedule_destroy(&hour);
    schedule_destroy(&quarter);
    schedule_destroy(&office);
    schedule_zones_destroy(&zones);
}

static void test_interval_crossing_midnight_covers_the_next_day(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *s = s_schedule_new(zones, "America/New_York|fri 22:00-02:00");
    const s_expect_t night[] = {
        {1767931200, 0}, /* 2026-01-09T04:00:00Z  thu 23:00 EST: thursday is not listed */
        {1768013999, 0}, /* 2026-01-10T02:59:59Z  fri 21:59:59 EST */
        {1768014000, 1}, /* 2026-01-10T03:00:00Z  fri 22:00 EST */
        {1768028399, 1}, /* 2026-01-10T06:59:59Z  sat 01:59:59 EST */
        {1768028400, 0}, /* 2026-01-10T07:00:00Z  sat 02:00 EST */
    };
    s_expect_open(s, night, sizeof night / sizeof *night);
    assert_int_equal(schedule_next_change(s, 1768014000), 1768028400);

    /* sunday night runs on into monday, across the end of the week */
    schedule_t *wrap = s_schedule_new(zones, "Etc/UTC|sun 22:00-02:00");
    const s_expect_t week_end[] = {
        {1767563999, 0}, /* 2026-01-04T21:59:59Z  sun */
        {1767564000, 1}, /* 2026-01-04T22:00:00Z  sun */
        {1767578399, 1}, /* 2026-01-05T01:59:59Z  mon */
        {1767578400, 0}, /* 2026-01-05T02:00:00Z  mon */
    };
    s_expect_open(wrap, week_end, sizeof week_end / sizeof *week_end);
    assert_int_equal(schedule_next_change(wrap, 1767567600), 1767578400); /* from sun 23:00 */
    assert_int_equal(schedule_next_change(wrap, 1767578400), 1767564000 + 7 * S_DAY);
    schedule_destroy(&s);
    schedule_destroy(&wrap);
    schedule_zones_destroy(&zones);
}

static void test_kolkata_half_hour_offset_and_tokyo_without_dst(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *kolkata = s_schedule_new(zones, "Asia/Kolkata|mon-fri 09:30-18:00");
    const s_expect_t ist[] = {
        {1767585599, 0}, /* 2026-01-05T03:59:59Z  mon 09:29:59 IST */
        {1767585600, 1}, /* 2026-01-05T04:00:00Z  mon 09:30 IST */
        {1767616199, 1}, /* 2026-01-05T12:29:59Z  mon 17:59:59 IST */
        {1767616200, 0}, /* 2026-01-05T12:30:00Z  mon 18:00 IST */
        {1783310400, 1}, /* 2026-07-06T04:00:00Z  mon 09:30 IST, same offset in summer */
    };
    s_expect_open(kolkata, ist, sizeof ist / sizeof *ist);
    assert_int_equal(schedule_next_change(kolkata, 1768003200), 1768190400); /* sat -> mon */

    schedule_t *tokyo = s_schedule_new(zones, "Asia/Tokyo|mon 09:00-10:00");
    const s_expect_t jst[] = {
        {1773014399, 0}, /* 2026-03-08T23:59:59Z  sun 08:59:59 JST */
        {1773014400, 1}, /* 2026-03-09T00:00:00Z  mon 09:00 JST */
        {1773018000, 0}, /* 2026-03-09T01:00:00Z  mon 10:00 JST */
        {1783297800, 1}, /* 2026-07-06T00:30:00Z  mon 09:30 JST */
    };
    s_expect_open(tokyo, jst, sizeof jst / sizeof *jst);
    /* the US change that night is none of Tokyo's business */
    assert_int_equal(schedule_next_change(tokyo, 1772971200), 1773014400);
    schedule_destroy(&kolkata);
    schedule_destroy(&tokyo);
    schedule_zones_destroy(&zones);
}

static void test_customer_local_time_uses_the_customer_zone(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *s = s_schedule_new(zones, "Europe/Berlin|mon-fri 09:00-17:00");
    /* 2026-01-05T20:00:00Z: 21:00 in Berlin, 15:00 in New York */
    assert_int_equal(schedule_is_open(s, 1767643200), 0);
    assert_int_equal(schedule_is_open_in_zone(s, "America/New_York", 1767643200), 1);
    assert_int_equal(schedule_is_open_in_zone(s, "Europe/Berlin", 1767643200), 0);
    /* closes at 17:00 EST = 2026-01-05T22:00:00Z */
    assert_int_equal(schedule_next_change_in_zone(s, "America/New_York", 1767643200), 1767650400);
    /* 2026-01-05T04:00:00Z: 09:30 in Kolkata */
    assert_int_equal(schedule_is_open_in_zone(s, "Asia/Kolkata", 1767585600), 1);
    assert_int_equal(schedule_is_open_in_zone(s, "Asia/Kolkata", 1767585599 - 1800), 0);
    schedule_destroy(&s);
    schedule_zones_destroy(&zones);
}

static void test_next_change_is_minus_one_when_nothing_changes(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *never = s_schedule_new(zones, "Europe/Berlin|");
    schedule_t *always = s_schedule_new(zones, "Europe/Berlin|mon-sun 00:00-24:00");
    schedule_t *weekly = s_schedule_new(zones, "Etc/UTC|mon 00:00-00:01");
    /* across the 2026-03-29 change too */
    for (time_t t = 1774742400 - 3 * S_DAY; t < 1774742400 + 3 * S_DAY; t += 1234) {
        assert_int_equal(schedule_is_open(never, t), 0);
        assert_int_equal(schedule_is_open(always, t), 1);
        assert_int_equal(schedule_next_change(never, t), -1);
        assert_int_equal(schedule_next_change(always, t), -1);
    }
    /* 2026-01-05T00:01:00Z (mon): next opening 7 days minus a minute on, within 8 days */
    assert_int_equal(schedule_next_change(weekly, 1767571260), 1767571260 + 7 * S_DAY - 60);
    /* instants outside years 1..9999 are refused, not misread */
    assert_int_equal(schedule_is_open(weekly, (time_t)INT64_MAX), -1);
    assert_int_equal(schedule_is_open(weekly, (time_t)INT64_MIN), -1);
    assert_int_equal(schedule_next_change(weekly, (time_t)INT64_MAX), -1);
    schedule_destroy(&never);
    schedule_destroy(&always);
    schedule_destroy(&weekly);
    schedule_zones_destroy(&zones);
}

/* Samoa skipped friday 2011-12-30: at 2011-12-30T10:00:00Z, thu 23:59:59 -10 became
   sat 00:00 +14. */
static void test_a_skipped_day_has_no_instants(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    schedule_t *friday = s_schedule_new(zones, "Pacific/Apia|fri 00:00-24:00");
    const s_expect_t skipped[] = {
        {1325239199, 0}, /* 2011-12-30T09:59:59Z  thu 23:59:59 -10 */
        {1325239200, 0}, /* 2011-12-30T10:00:00Z  sat 00:00 +14 */
    };
    s_expect_open(friday, skipped, sizeof skipped / sizeof *skipped);
    /* from thu 2011-12-29 00:00 -10 the next friday starts 2012-01-05T10:00:00Z */
    assert_int_equal(schedule_next_change(friday, 1325152800), 1325757600);
    /* from fri 2011-12-23 11:00 -10 the next opening, 2012-01-05T20:00:00Z, is 13 days away */
    schedule_t *hour = s_schedule_new(zones, "Pacific/Apia|fri 10:00-11:00");
    assert_int_equal(schedule_next_change(hour, 1324674000), -1);

    /* before its first transition (1893) Berlin kept local mean time, +00:53:28 */
    schedule_t *lmt = s_schedule_new(zones, "Europe/Berlin|mon 00:00-01:00");
    assert_int_equal(schedule_is_open(lmt, -2839798620), 0); /* 1880-01-04T23:03:00Z sun 23:56:28 */
    assert_int_equal(schedule_is_open(lmt, -2839798408), 1); /* 1880-01-04T23:06:32Z mon 00:00 */
    schedule_destroy(&friday);
    schedule_destroy(&hour);
    schedule_destroy(&lmt);
    schedule_zones_destroy(&zones);
}

/* ---------------------------------------------------------------- sweeps against glibc */

/* Open on even local hours; open on tuesdays, thursdays and saturdays. Between them they
   catch a wrong offset (by an hour, or by half an hour at :10 or :40) and a wrong weekday. */
#define S_EVEN_HOURS                                                                               \
    "mon-sun 00:00-01:00,mon-sun 02:00-03:00,mon-sun 04:00-05:00,mon-sun 06:00-07:00,"             \
    "mon-sun 08:00-09:00,mon-sun 10:00-11:00,mon-sun 12:00-13:00,mon-sun 14:00-15:00,"             \
    "mon-sun 16:00-17:00,mon-sun 18:00-19:00,mon-sun 20:00-21:00,mon-sun 22:00-23:00"
#define S_ALTERNATE_DAYS "tue 00:00-24:00,thu 00:00-24:00,sat 00:00-24:00"

typedef struct {
    char *saved; /* TZ before the oracle took it, or NULL */
} s_oracle_t;

static void s_oracle_begin(s_oracle_t *self, const char *tz)
{
    const char *old = getenv("TZ");
    self->saved = old ? strdup(old) : NULL;
    setenv("TZ", tz, 1);
    tzset();
}

static void s_oracle_end(s_oracle_t *self)
{
    if (self->saved)
        setenv("TZ", self->saved, 1);
    else
        unsetenv("TZ");
    free(self->saved);
    self->saved = NULL;
    tzset();
}

static int s_oracle_even(time_t t)
{
    struct tm tm;
    assert_non_null(localtime_r(&t, &tm));
    return tm.tm_hour % 2 == 0;
}

static int s_oracle_days(time_t t)
{
    struct tm tm;
    assert_non_null(localtime_r(&t, &tm));
    return tm.tm_wday == 2 || tm.tm_wday == 4 || tm.tm_wday == 6;
}

/* Checks is_open for both schedules every step seconds of [from, to), and next_change of the
   even-hours schedule every check_every-th step, minute by minute up to the change. The
   schedules are made in zone; glibc reads oracle_tz. */
static void s_sweep(schedule_zones_t *zones, const char *zone, const char *oracle_tz, time_t from,
                    time_t to, time_t step, int check_every)
{
    char text[1024];
    snprintf(text, sizeof text, "%s|" S_EVEN_HOURS, zone);
    schedule_t *even = s_schedule_new(zones, text);
    snprintf(text, sizeof text, "%s|" S_ALTERNATE_DAYS, zone);
    schedule_t *days = s_schedule_new(zones, text);
    s_oracle_t oracle;
    s_oracle_begin(&oracle, oracle_tz);
    int n = 0;
    for (time_t t = from; t < to; t += step, n++) {
        int want = s_oracle_even(t);
        if (schedule_is_open(even, t) != want || schedule_is_open(days, t) != s_oracle_days(t)) {
            s_oracle_end(&oracle);
            fail_msg("%s: is_open disagrees with glibc at %lld", zone, (long long)t);
        }
        if (check_every == 0 || n % check_every != 0)
            continue;
        time_t change = schedule_next_change(even, t);
        bool ok = change > t && change - t <= 3 * S_HOUR && s_oracle_even(change) != want &&
                  s_oracle_even(change - 1) == want;
        for (time_t m = t - t % 60 + 60; ok && m < change; m += 60)
            ok = s_oracle_even(m) == want;
        time_t day_change = schedule_next_change(days, t);
        ok = ok && day_change > t && day_change - t <= 2 * S_DAY + 2 * S_HOUR &&
             s_oracle_days(day_change) != s_oracle_days(t) &&
             s_oracle_days(day_change - 1) == s_oracle_days(t);
        if (!ok) {
            s_oracle_end(&oracle);
            fail_msg("%s: next_change from %lld gave %lld / %lld", zone, (long long)t,
                     (long long)change, (long long)day_change);
        }
    }
    s_oracle_end(&oracle);
    schedule_destroy(&even);
    schedule_destroy(&days);
}

static void test_zones_agree_with_glibc_around_the_year(void **state)
{
    (void)state;
    schedule_zones_t *zones = s_zones_new();
    const char *names[] = {
        "Europe/Berlin",    "America/New_York",    "Australia/Sydney",  "Asia/Kolkata",
        "Pacific/Chatham",  "Australia/Lord_Howe", "Europe/Dublin",     "America/Nuuk",
        "Asia/Jerusalem",   "America/Sao_Paulo",   "Africa/Casablanca", "Asia/Tokyo",
        "America/Santiago", "Pacific/Apia",        "Europe/London",     "Asia/Gaza",
    };
    const struct {
        time_t from, to;
    } spans[] = {
        {820454400, 883612800},   /* 1996-01-01 .. 1998-01-01: older table entries */
        {1767225600, 1830297600}, /* 2026-01-01 .. 2028-01-01 */
        {2208988800, 2272147200}, /* 2040-01-01 .. 2042-01-01: past the table, the TZ rule */
    };
    for (size_t z = 0; z < sizeof names / sizeof *names; z++)
        for (size_t s = 0; s < sizeof spans / sizeof *spans; s++)
            s_sweep(zones, names[z], names[z], spans[s].from, spans[s].to, 97 * 60, 61);
    schedule_zones_destroy(&zones);
}

/* Every zone in zone1970.tab loads and agrees with glibc through 2026 and 2040. */
static void test_every_listed_zone_loads_and_agrees_with_glibc(void **state)
{
    (void)state;
    FILE *tab = fopen(SCHEDULE_ZONEINFO_DIR "/zone1970.tab", "r");
    if (!tab)
        skip();
    schedule_zones_t *zones = s_zones_new();
    char line[1024];
    int count = 0;
    while (fgets(line, sizeof line, tab)) {
        if (line[0] == '#')
            continue;
        char *name = strchr(line, '\t');
        name = name ? strchr(name + 1, '\t') : NULL;
        if (!name)
            continue;
        name++;
        name[strcspn(name, "\t\n")] = '\0';
        char why[256];
        if (schedule_zones_require(zones, name, why, sizeof why) != 0)
            fail_msg("%s: %s", name, why);
        s_sweep(zones, name, name, 1767225600, 1798761600, S_DAY + 37 * 60, 0);
        s_sweep(zones, name, name, 2208988800, 2240524800, 5 * S_DAY + 41 * 60, 0);
        count++;
    }
    fclose(tab);
    assert_true(count > 300);
    schedule_zones_destroy(&zones);
}

/* ---------------------------------------------------------------- a tz database of our own */

static void s_put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* Writes a version 2 TZif file with no transitions, one time type and the given footer: all
   instants are governed by the TZ rule. */
static void s_write_rule_zone(const char *path, const char *rule)
{
    uint8_t header[44] = {'T', 'Z', 'i', 'f', '2'};
    s_put32(header + 36, 1); /* typecnt */
    s_put32(header + 40, 4); /* charcnt */
    const uint8_t types[10] = {0, 0, 0, 0, 0, 0, 'Z', 'Z', 'Z', 0};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(header, 1, sizeof header, f);
    fwrite(types, 1, sizeof types, f);
    fwrite(header, 1, sizeof header, f);
    fwrite(types, 1, sizeof types, f);
    fprintf(f, "\n%s\n", rule);
    assert_int_equal(fclose(f), 0);
}

/* Footers as found in tzdata, plus the corners of the grammar; zone Rule/Z<i> has rules[i]. */
static const char *s_rules[] = {
    "EST5EDT,M3.2.0,M11.1.0",
    "CET-1CEST,M3.5.0,M10.5.0/3",
    "AEST-10AEDT,M10.1.0,M4.1.0/3",
    "IST-1GMT0,M10.5.0,M3.5.0/1",           /* negative DST (Europe/Dublin) */
    "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",      /* negative time of day (America/Nuuk) */
    "EET-2EEST,M3.4.4/50,M10.4.4/50",       /* time past 24h (Asia/Gaza) */
    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", /* half-hour DST (Australia/Lord_Howe) */
    "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
    "NST3:30NDT,M3.2.0,M11.1.0",
    "XST3XDT,J60/2,300/3", /* julian day forms */
    "<-0930>9:30",
    "EST5EDT", /* no dates: the US rules */
    "NZST-12NZDT,M9.5.0,M4.1.0/3",
    "XST3XDT,M4.5.5,M9.5.0", /* week 5 past the month's end: the last friday */
};
#define S_RULES (sizeof s_rules / sizeof *s_rules)

static int s_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Builds a scratch tz database in a new temporary directory; *state is its path. */
static int s_scratch_setup(void **state)
{
    char *dir = strdup("/tmp/parley-schedule-XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    char path[256];
    snprintf(path, sizeof path, "%s/Rule", dir);
    if (mkdir(path, 0700) != 0)
        return -1;
    for (size_t i = 0; i < S_RULES; i++) {
        snprintf(path, sizeof path, "%s/Rule/Z%zu", dir, i);
        s_write_rule_zone(path, s_rules[i]);
    }
    /* DST all year in RFC 8536's spelling; glibc leaves a gap at new year, so no oracle */
    snprintf(path, sizeof path, "%s/Rule/AllYear", dir);
    s_write_rule_zone(path, "EST5EDT4,0/0,J365/25");
    snprintf(path, sizeof path, "%s/Rule/NewYear", dir);
    s_write_rule_zone(path, "XST3XDT,J2/1,J200");
    snprintf(path, sizeof path, "%s/BadRule", dir);
    s_write_rule_zone(path, "EST5EDT,M13.1.0,M11.1.0");
    snprintf(path, sizeof path, "%s/Garbage", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("TZif2 but not really\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/Escape", dir);
    if (symlink(SCHEDULE_ZONEINFO_DIR "/Europe/Berlin", path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/Inside", dir);
    if (symlink("Rule/Z0", path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/Fifo", dir);
    return mkfifo(path, 0600);
}

static int s_scratch_teardown(void **state)
{
    char *dir = *state;
    if (!dir)
        return 0;
    int rc = nftw(dir, s_remove, 8, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return rc;
}

static void test_tz_rules_agree_with_glibc_and_bad_files_are_refused(void **state)
{
    char why[256];
    schedule_zones_t *zones = schedule_zones_new(*state, why, sizeof why);
    if (!zones)
        fail_msg("schedule_zones_new: %s", why);
    for (size_t i = 0; i < S_RULES; i++) {
        char zone[64];
        snprintf(zone, sizeof zone, "Rule/Z%zu", i);
        s_sweep(zones, zone, s_rules[i], 1767225600, 1861920000, 97 * 60, 61); /* 2026-2028 */
        s_sweep(zones, zone, s_rules[i], 4102444800, 4133980800, 97 * 60, 61); /* 2100 */
    }

    schedule_t *all_year = s_schedule_new(zones, "Rule/AllYear|thu 00:00-01:00");
    const s_expect_t edt[] = {
        {1767239999, 0}, /* 2026-01-01T03:59:59Z  wed 23:59:59 EDT */
        {1767240000, 1}, /* 2026-01-01T04:00:00Z  thu 00:00 EDT */
        {1767243599, 1}, /* 2026-01-01T04:59:59Z  thu 00:59:59 EDT */
        {1767243600, 0}, /* 2026-01-01T05:00:00Z  thu 01:00 EDT, the rule's own instant */
        {1782964800, 1}, /* 2026-07-02T04:00:00Z  thu 00:00 EDT */
    };
    s_expect_open(all_year, edt, sizeof edt / sizeof *edt);
    assert_int_equal(schedule_next_change(all_year, 1767240000), 1767243600);
    schedule_destroy(&all_year);

    /* DST starts 2026-01-02 01:00 XST = 04:00Z, jumping to 02:00 XDT; seen from 2025 */
    schedule_t *new_year = s_schedule_new(zones, "Rule/NewYear|fri 01:30-02:30");
    assert_int_equal(schedule_next_change(new_year, 1767052800), 1767326400); /* from 12-30 */
    assert_int_equal(schedule_next_change(new_year, 1767326400), 1767328200); /* 02:30 XDT */
    schedule_destroy(&new_year);

    assert_int_equal(schedule_zones_require(zones, "Inside", why, sizeof why), 0);
    assert_int_equal(schedule_zones_require(zones, "Garbage", why, sizeof why), -1);
    assert_int_equal(schedule_zones_require(zones, "Escape", why, sizeof why), -1);
    assert_non_null(strstr(why, "outside the tz database"));
    assert_int_equal(schedule_zones_require(zones, "Fifo", why, sizeof why), -1);
    assert_int_equal(schedule_zones_require(zones, "BadRule", why, sizeof why), -1);
    assert_int_equal(schedule_zones_require(zones, "Europe/Berlin", why, sizeof why), -1);
    schedule_zones_destroy(&zones);
}

int test_schedule_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_text_round_trips),
        cmocka_unit_test(test_schedule_refuses_malformed_text_with_a_reason),
        cmocka_unit_test(test_schedule_refuses_unknown_zones_and_path_tricks),
        cmocka_unit_test(test_berlin_office_hours_in_winter_and_summer),
        cmocka_unit_test(test_berlin_spring_forward_2026),
        cmocka_unit_test(test_berlin_fall_back_2026),
        cmocka_unit_test(test_new_york_spring_forward_2026),
        cmocka_unit_test(test_new_york_fall_back_2026),
        cmocka_unit_test(test_interval_crossing_midnight_covers_the_next_day),
        cmocka_unit_test(test_kolkata_half_hour_offset_and_tokyo_without_dst),
        cmocka_unit_test(test_customer_local_time_uses_the_customer_zone),
        cmocka_unit_test(test_next_change_is_minus_one_when_nothing_changes),
        cmocka_unit_test(test_a_skipped_day_has_no_instants),
        cmocka_unit_test(test_zones_agree_with_glibc_around_the_year),
        cmocka_unit_test(test_every_listed_zone_loads_and_agrees_with_glibc),
        cmocka_unit_test_setup_teardown(test_tz_rules_agree_with_glibc_and_bad_files_are_refused,
                                        s_scratch_setup, s_scratch_teardown),
    };
    return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}

/*  schedule.c - weekly schedules in IANA time zones; see schedule.h for the text form and the
    DST rule.

    Sections, in order: the zone cache (a thin wrapper around tz_zone's cache, which reads the
    tz database); parsing and formatting schedules; evaluating them.

    A compiled schedule is the list of "flips": the seconds of the week (0 = monday 00:00
    local) where the union of its intervals turns from closed to open or back, plus the state
    at monday 00:00. Inside a stretch of time with one UTC offset, local time runs evenly, so
    the next change is the next flip; at an offset change local time jumps, and the state is
    evaluated afresh. Owns each schedule's flip array; zones are owned by the cache and
    borrowed. Single-threaded; no global state. */
#include "schedule.h"

#include "tz_zone.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DAY_S 86400
#define S_WEEK_S (7 * S_DAY_S)
#define S_WEEK_MIN (7 * 1440)
#define S_MIN_TIME INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define S_MAX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define S_ZONE_ERROR 256                 /* room for a zone error inside a schedule error */

_Static_assert(SCHEDULE_MAX_ZONE_NAME == TZ_ZONE_MAX_NAME, "zone name limits must agree");

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t s_floor_mod(int64_t a, int64_t b)
{
    return a - s_floor_div(a, b) * b;
}

static bool s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---------------------------------------------------------------- the zone cache */

struct schedule_zones_t {
    tz_zones_t *tz; /* owned: the zones every schedule made with this cache borrows */
};

schedule_zones_t *schedule_zones_new(const char *zoneinfo_dir, char *error, size_t error_size)
{
    schedule_zones_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    self->tz = tz_zones_new(zoneinfo_dir ? zoneinfo_dir : SCHEDULE_ZONEINFO_DIR, error, error_size);
    if (!self->tz) {
        free(self);
        return NULL;
    }
    return self;
}

void schedule_zones_destroy(schedule_zones_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    schedule_zones_t *self = *self_p;
    tz_zones_destroy(&self->tz);
    free(self);
    *self_p = NULL;
}

int schedule_zones_require(schedule_zones_t *self, const char *zone_name, char *error,
                           size_t error_size)
{
    return tz_zones_require(self->tz, zone_name, error, error_size) ? 0 : -1;
}

/* ---------------------------------------------------------------- parsing and formatting */

typedef struct {
    uint8_t first_day;  /* 0 = mon .. 6 = sun */
    uint8_t last_day;   /* may be before first_day: the range wraps past sunday */
    uint16_t start_min; /* minute of the day, 0..1439 */
    uint16_t end_min;   /* 0..1440; <= start_min runs on into the next day */
} s_group_t;

struct schedule_t {
    schedule_zones_t *zones;               /* borrowed: zones for the _in_zone calls */
    const tz_zone_t *zone;                 /* borrowed from zones */
    s_group_t groups[SCHEDULE_MAX_GROUPS]; /* as written, for schedule_format */
    size_t group_count;
    int32_t *flips_s; /* week seconds where the state changes, ascending; NULL if none */
    size_t flip_count;
    bool open_at_week_start; /* the state at monday 00:00:00 */
};

static const char *s_day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

typedef struct {
    const char *text; /* the whole schedule text, for columns */
    const char *p;    /* the cursor */
    char *error;
    size_t error_size;
} s_parser_t;

static int s_syntax(s_parser_t *self, const char *what)
{
    snprintf(self->error, self->error_size, "schedule: column %zu: %s",
             (size_t)(self->p - self->text) + 1, what);
    return -1;
}

static int s_parse_day(s_parser_t *self, uint8_t *day)
{
    for (uint8_t d = 0; d < 7; d++) {
        if (strncmp(self->p, s_day_names[d], 3) == 0) {
            *day = d;
            self->p += 3;
            return 0;
        }
    }
    return s_syntax(self, "expected a day: mon, tue, wed, thu, fri, sat or sun");
}

static int s_parse_time(s_parser_t *self, bool is_end, uint16_t *minute)
{
    const char *p = self->p;
    if (!s_is_digit(p[0]) || !s_is_digit(p[1]) || p[2] != ':' || !s_is_digit(p[3]) ||
        !s_is_digit(p[4]))
        return s_syntax(self, "expected a time as HH:MM");
    int hours = (p[0] - '0') * 10 + (p[1] - '0');
    int minutes = (p[3] - '0') * 10 + (p[4] - '0');
    if (minutes > 59 || hours > 24 || (hours == 24 && (minutes != 0 || !is_end)))
        return s_syntax(self, is_end ? "end time is not between 00:00 and 24:00"
                                     : "start time is not between 00:00 and 23:59");
    *minute = (uint16_t)(hours * 60 + minutes);
    self->p += 5;
    return 0;
}

static int s_parse_group(s_parser_t *self, s_group_t *group)
{
    if (s_parse_day(self, &group->first_day))
        return -1;
    group->last_day = group->first_day;
    if (*self->p == '-') {
        self->p++;
        if (s_parse_day(self, &group->last_day))
            return -1;
        if (group->last_day == group->first_day) {
            self->p -= 3;
            return s_syntax(self, "a day range needs two different days");
        }
    }
    if (*self->p++ != ' ') {
        self->p--;
        return s_syntax(self, "expected one space between the days and the times");
    }
    if (s_parse_time(self, false, &group->start_min))
        return -1;
    if (*self->p != '-')
        return s_syntax(self, "expected '-' between the start and end times");
    self->p++;
    if (s_parse_time(self, true, &group->end_min))
        return -1;
    if (group->end_min == group->start_min) {
        self->p -= 5;
        return s_syntax(self, "end time equals start time (an empty interval)");
    }
    return 0;
}

static int s_parse_groups(schedule_t *self, s_parser_t *parser)
{
    if (*parser->p == '\0')
        return 0; /* never open */
    for (;;) {
        if (self->group_count == SCHEDULE_MAX_GROUPS) {
            char what[64];
            snprintf(what, sizeof what, "more than %d groups", SCHEDULE_MAX_GROUPS);
            return s_syntax(parser, what);
        }
        if (s_parse_group(parser, &self->groups[self->group_count]))
            return -1;
        self->group_count++;
        if (*parser->p == '\0')
            return 0;
        if (*parser->p != ',')
            return s_syntax(parser, "expected ',' or the end of the text");
        parser->p++;
    }
}

/* Turns the groups into flips: marks every open minute of the week, then records where a
   minute differs from the one before it (cyclically). Returns 0, or -1 when memory runs
   out. */
static int s_compile(schedule_t *self)
{
    uint8_t minutes[S_WEEK_MIN]; /* 1 where the minute is open */
    memset(minutes, 0, sizeof minutes);
    for (size_t i = 0; i < self->group_count; i++) {
        const s_group_t *g = &self->groups[i];
        for (int day = g->first_day;; day = (day + 1) % 7) {
            int start = day * 1440 + g->start_min;
            int end = day * 1440 + g->end_min + (g->end_min <= g->start_min ? 1440 : 0);
            for (int minute = start; minute < end; minute++)
                minutes[minute % S_WEEK_MIN] = 1;
            if (day == g->last_day)
                break;
        }
    }
    size_t count = 0;
    for (int minute = 0; minute < S_WEEK_MIN; minute++)
        count += minutes[minute] != minutes[(minute + S_WEEK_MIN - 1) % S_WEEK_MIN];
    self->open_at_week_start = minutes[0];
    if (count == 0)
        return 0;
    self->flips_s = malloc(count * sizeof *self->flips_s);
    if (!self->flips_s)
        return -1;
    for (int minute = 0; minute < S_WEEK_MIN; minute++)
        if (minutes[minute] != minutes[(minute + S_WEEK_MIN - 1) % S_WEEK_MIN])
            self->flips_s[self->flip_count++] = minute * 60;
    return 0;
}

schedule_t *schedule_new(schedule_zones_t *zones, const char *text, char *error, size_t error_size)
{
    if (!zones || !text) {
        snprintf(error, error_size, "schedule: no text");
        return NULL;
    }
    if (strnlen(text, SCHEDULE_MAX_TEXT + 1) > SCHEDULE_MAX_TEXT) {
        snprintf(error, error_size, "schedule: longer than %d bytes", SCHEDULE_MAX_TEXT);
        return NULL;
    }
    const char *bar = strchr(text, '|');
    if (!bar) {
        snprintf(error, error_size, "schedule: expected 'zone|intervals', found no '|'");
        return NULL;
    }
    size_t zone_len = (size_t)(bar - text);
    if (zone_len == 0 || zone_len > SCHEDULE_MAX_ZONE_NAME) {
        snprintf(error, error_size, "schedule: the zone name before '|' must have 1 to %d bytes",
                 SCHEDULE_MAX_ZONE_NAME);
        return NULL;
    }
    char zone_name[SCHEDULE_MAX_ZONE_NAME + 1];
    memcpy(zone_name, text, zone_len);
    zone_name[zone_len] = '\0';

    schedule_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(error, error_size, "schedule: out of memory");
        return NULL;
    }
    self->zones = zones;
    char zone_error[S_ZONE_ERROR];
    self->zone = tz_zones_require(zones->tz, zone_name, zone_error, sizeof zone_error);
    if (!self->zone) {
        snprintf(error, error_size, "schedule: %s", zone_error);
        goto fail;
    }
    s_parser_t parser = {text, bar + 1, error, error_size};
    if (s_parse_groups(self, &parser))
        goto fail;
    if (s_compile(self)) {
        snprintf(error, error_size, "schedule: out of memory");
        goto fail;
    }
    return self;
fail:
    schedule_destroy(&self);
    return NULL;
}

void schedule_destroy(schedule_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    schedule_t *self = *self_p;
    free(self->flips_s);
    free(self);
    *self_p = NULL;
}

char *schedule_format(const schedule_t *self)
{
    /* A group is at most "mon-fri 09:00-17:00" plus its comma: 20 bytes. */
    size_t size = strlen(tz_zone_name(self->zone)) + 1 + self->group_count * 20 + 1;
    char *text = malloc(size);
    if (!text)
        return NULL;
    size_t used = (size_t)snprintf(text, size, "%s|", tz_zone_name(self->zone));
    for (size_t i = 0; i < self->group_count; i++) {
        const s_group_t *g = &self->groups[i];
        used += (size_t)snprintf(text + used, size - used, "%s%s", i ? "," : "",
                                 s_day_names[g->first_day]);
        if (g->last_day != g->first_day)
            used += (size_t)snprintf(text + used, size - used, "-%s", s_day_names[g->last_day]);
        used +=
            (size_t)snprintf(text + used, size - used, " %02d:%02d-%02d:%02d", g->start_min / 60,
                             g->start_min % 60, g->end_min / 60, g->end_min % 60);
    }
    return text;
}

const char *schedule_zone(const schedule_t *self)
{
    return tz_zone_name(self->zone);
}

/* ---------------------------------------------------------------- evaluating */

/* The second of the week, 0 = monday 00:00:00, of a local wall-clock instant. */
static int64_t s_week_second(int64_t local)
{
    return s_floor_mod(local + 3 * S_DAY_S, S_WEEK_S); /* 1970-01-01 was a thursday */
}

/* The number of flips at or before week second w. */
static size_t s_flips_upto(const schedule_t *self, int64_t w)
{
    size_t lo = 0, hi = self->flip_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->flips_s[mid] <= w)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool s_open_local(const schedule_t *self, int64_t local)
{
    size_t flips = s_flips_upto(self, s_week_second(local));
    if (flips > 0 && self->flips_s[0] == 0)
        flips--; /* a flip at monday 00:00 is already in open_at_week_start */
    return self->open_at_week_start ^ (flips & 1);
}

static int s_is_open(const schedule_t *self, const tz_zone_t *zone, time_t now)
{
    int64_t t = (int64_t)now;
    if (t < S_MIN_TIME || t > S_MAX_TIME)
        return -1;
    return s_open_local(self, t + tz_zone_offset_at(zone, t));
}

/* Walks the stretches of constant UTC offset from now on: inside one, the next change is the
   next flip of local time; at its end, the state is evaluated in the new offset. */
static time_t s_next_change(const schedule_t *self, const tz_zone_t *zone, time_t now)
{
    int64_t t = (int64_t)now;
    if (t < S_MIN_TIME || t > S_MAX_TIME || self->flip_count == 0)
        return -1;
    int64_t limit = t + SCHEDULE_HORIZON_S;
    int32_t utoff = tz_zone_offset_at(zone, t);
    bool was_open = s_open_local(self, t + utoff);
    for (;;) {
        int64_t stretch_end = tz_zone_next_transition(zone, t);
        int64_t w = s_week_second(t + utoff);
        size_t i = s_flips_upto(self, w);
        int64_t flip = i < self->flip_count ? self->flips_s[i] : self->flips_s[0] + S_WEEK_S;
        int64_t change = t + (flip - w);
        if (change < stretch_end)
            return change <= limit ? (time_t)change : -1;
        if (stretch_end > limit)
            return -1;
        t = stretch_end;
        utoff = tz_zone_offset_at(zone, t);
        if (s_open_local(self, t + utoff) != was_open)
            return (time_t)t;
    }
}

int schedule_is_open(const schedule_t *self, time_t now)
{
    return s_is_open(self, self->zone, now);
}

int schedule_is_open_in_zone(const schedule_t *self, const char *zone_name, time_t now)
{
    char error[S_ZONE_ERROR];
    const tz_zone_t *zone = tz_zones_require(self->zones->tz, zone_name, error, sizeof error);
    return zone ? s_is_open(self, zone, now) : -1;
}

time_t schedule_next_change(const schedule_t *self, time_t now)
{
    return s_next_change(self, self->zone, now);
}

time_t schedule_next_change_in_zone(const schedule_t *self, const char *zone_name, time_t now)
{
    char error[S_ZONE_ERROR];
    const tz_zone_t *zone = tz_zones_require(self->zones->tz, zone_name, error, sizeof error);
    return zone ? s_next_change(self, zone, now) : -1;
}

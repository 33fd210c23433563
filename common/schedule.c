/*  schedule.c - weekly schedules in IANA time zones; see schedule.h for the text form, the
    DST rule and why we read TZif files ourselves.

    Sections, in order: calendar arithmetic; POSIX TZ rules (the footer of a TZif file, used
    for instants after its table); TZif files; the zone cache; parsing and formatting
    schedules; evaluating them.

    A compiled schedule is the list of "flips": the seconds of the week (0 = monday 00:00
    local) where the union of its intervals turns from closed to open or back, plus the state
    at monday 00:00. Inside a stretch of time with one UTC offset, local time runs evenly, so
    the next change is the next flip; at an offset change local time jumps, and the state is
    evaluated afresh. Owns its zones (in the cache) and each schedule's flip array.
    Single-threaded; no global state. */
#include "schedule.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_DAY_S 86400
#define S_WEEK_S (7 * S_DAY_S)
#define S_WEEK_MIN (7 * 1440)
#define S_MIN_TIME INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define S_MAX_TIME INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define S_MAX_TZIF_BYTES (256 * 1024)    /* real TZif files are under 4 KiB */
#define S_MAX_UTOFF_S (26 * 3600)        /* RFC 8536 bounds: -25:59:59 .. +25:59:59 */
#define S_MAX_FOOTER 128                 /* bytes of a TZ rule string */
#define S_BUCKETS 64                     /* zone cache hash buckets */
#define S_ZONE_ERROR 256                 /* room for a zone error inside a schedule error */

/* ---------------------------------------------------------------- calendar arithmetic */

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

static bool s_is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int s_month_days(int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[month - 1] + (month == 2 && s_is_leap(year));
}

/* Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t s_days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = s_floor_div(year, 400);
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* The year of the date that lies days after 1970-01-01. */
static int64_t s_year_of_days(int64_t days)
{
    days += 719468;
    int64_t era = s_floor_div(days, 146097);
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153;
    return year_of_era + era * 400 + (month_from_march >= 10);
}

/* ---------------------------------------------------------------- POSIX TZ rules */

typedef enum {
    S_DATE_JULIAN1, /* Jn: day n of 1..365, february 29 never counted */
    S_DATE_JULIAN0, /* n: day n of 0..365, february 29 counted */
    S_DATE_MONTH    /* Mm.w.d: weekday d of week w (5 = last) of month m */
} s_date_kind_t;

typedef struct {
    s_date_kind_t kind;
    int day;        /* Jn and n forms */
    int month;      /* 1..12 */
    int week;       /* 1..5 */
    int weekday;    /* 0 = sunday .. 6 */
    int32_t time_s; /* local time of day of the change; -167h..167h */
} s_rule_date_t;

typedef struct {
    int32_t std_utoff_s; /* standard time's offset from UTC, east positive */
    int32_t dst_utoff_s; /* daylight time's offset, when has_dst */
    bool has_dst;        /* false: standard time all year */
    s_rule_date_t start; /* DST starts; its time is in standard time */
    s_rule_date_t end;   /* DST ends; its time is in daylight time */
} s_tz_rule_t;

static bool s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool s_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Reads 1..max_digits decimal digits at *p into *value; fails above max. */
static int s_tz_number(const char **p, int max_digits, int max, int *value)
{
    const char *s = *p;
    int n = 0, v = 0;
    while (n < max_digits && s_is_digit(s[n]))
        v = v * 10 + (s[n++] - '0');
    if (n == 0 || v > max)
        return -1;
    *p = s + n;
    *value = v;
    return 0;
}

/* Reads [+|-]hh[:mm[:ss]] with hours up to max_hours into *seconds. */
static int s_tz_time(const char **p, int max_hours, int32_t *seconds)
{
    int sign = 1, hours, minutes = 0, secs = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (s_tz_number(p, 3, max_hours, &hours))
        return -1;
    if (**p == ':') {
        (*p)++;
        if (s_tz_number(p, 2, 59, &minutes))
            return -1;
        if (**p == ':') {
            (*p)++;
            if (s_tz_number(p, 2, 59, &secs))
                return -1;
        }
    }
    *seconds = sign * (hours * 3600 + minutes * 60 + secs);
    return 0;
}

/* Skips a zone abbreviation: three or more letters, or <...> of letters, digits, + and -. */
static int s_tz_name(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while (s_is_alpha(s[n]) || s_is_digit(s[n]) || s[n] == '+' || s[n] == '-')
            n++;
        if (s[n] != '>' || n < 3)
            return -1;
        *p = s + n + 1;
        return 0;
    }
    while (s_is_alpha(s[n]))
        n++;
    if (n < 3)
        return -1;
    *p = s + n;
    return 0;
}

static int s_tz_date(const char **p, s_rule_date_t *date)
{
    memset(date, 0, sizeof *date);
    if (**p == 'J') {
        (*p)++;
        date->kind = S_DATE_JULIAN1;
        if (s_tz_number(p, 3, 365, &date->day) || date->day < 1)
            return -1;
    } else if (**p == 'M') {
        (*p)++;
        date->kind = S_DATE_MONTH;
        if (s_tz_number(p, 2, 12, &date->month) || date->month < 1 || *(*p)++ != '.' ||
            s_tz_number(p, 1, 5, &date->week) || date->week < 1 || *(*p)++ != '.' ||
            s_tz_number(p, 1, 6, &date->weekday))
            return -1;
    } else {
        date->kind = S_DATE_JULIAN0;
        if (s_tz_number(p, 3, 365, &date->day))
            return -1;
    }
    date->time_s = 2 * 3600;
    if (**p == '/') {
        (*p)++;
        if (s_tz_time(p, 167, &date->time_s))
            return -1;
    }
    return 0;
}

/* Parses a POSIX TZ string as RFC 8536 extends it, e.g. "CET-1CEST,M3.5.0,M10.5.0/3".
   Returns 0, or -1 when it is malformed. */
static int s_tz_rule_parse(const char *text, s_tz_rule_t *rule)
{
    const char *p = text;
    int32_t offset_s;
    memset(rule, 0, sizeof *rule);
    if (s_tz_name(&p) || s_tz_time(&p, 24, &offset_s))
        return -1;
    rule->std_utoff_s = -offset_s; /* POSIX offsets count west of Greenwich */
    if (*p == '\0')
        return 0;
    if (s_tz_name(&p))
        return -1;
    rule->has_dst = true;
    rule->dst_utoff_s = rule->std_utoff_s + 3600;
    if (*p != ',' && *p != '\0') {
        if (s_tz_time(&p, 24, &offset_s))
            return -1;
        rule->dst_utoff_s = -offset_s;
    }
    if (*p == '\0') {
        /* No dates: POSIX leaves them to the implementation; tzcode uses the US rules. */
        const char *us = "M3.2.0,M11.1.0";
        return s_tz_date(&us, &rule->start) || *us++ != ',' || s_tz_date(&us, &rule->end) ? -1 : 0;
    }
    if (*p++ != ',' || s_tz_date(&p, &rule->start) || *p++ != ',' || s_tz_date(&p, &rule->end) ||
        *p != '\0')
        return -1;
    return 0;
}

/* Days from 1970-01-01 to the local date on which date falls in year. */
static int64_t s_rule_day(const s_rule_date_t *date, int64_t year)
{
    int64_t jan1 = s_days_from_civil(year, 1, 1);
    if (date->kind == S_DATE_JULIAN1)
        return jan1 + date->day - 1 + (s_is_leap(year) && date->day >= 60);
    if (date->kind == S_DATE_JULIAN0)
        return jan1 + date->day;
    int64_t first = s_days_from_civil(year, date->month, 1);
    int64_t first_weekday = s_floor_mod(first + 4, 7); /* 1970-01-01 was a thursday */
    int64_t day = first + (date->weekday - first_weekday + 7) % 7 + (date->week - 1) * 7;
    while (day >= first + s_month_days(year, date->month))
        day -= 7;
    return day;
}

/* The UTC instants at which DST starts and ends in year. */
static void s_rule_year(const s_tz_rule_t *rule, int64_t year, int64_t *start, int64_t *end)
{
    *start = s_rule_day(&rule->start, year) * S_DAY_S + rule->start.time_s - rule->std_utoff_s;
    *end = s_rule_day(&rule->end, year) * S_DAY_S + rule->end.time_s - rule->dst_utoff_s;
}

static int64_t s_rule_year_of(const s_tz_rule_t *rule, int64_t t)
{
    return s_year_of_days(s_floor_div(t + rule->std_utoff_s, S_DAY_S));
}

/* The UTC offset at t: that of the latest change at or before t, looking at the year around
   t, so rules for either hemisphere and change times past midnight (e.g. J365/25) work. When
   DST ends and starts at the same instant (DST all year), the start wins. */
static int32_t s_rule_utoff(const s_tz_rule_t *rule, int64_t t)
{
    if (!rule->has_dst)
        return rule->std_utoff_s;
    int64_t year = s_rule_year_of(rule, t);
    int64_t latest = INT64_MIN;
    bool dst = false;
    for (int64_t y = year - 1; y <= year + 1; y++) {
        int64_t start, end;
        s_rule_year(rule, y, &start, &end);
        if (end <= t && end > latest) {
            latest = end;
            dst = false;
        }
        if (start <= t && start >= latest) {
            latest = start;
            dst = true;
        }
    }
    return dst ? rule->dst_utoff_s : rule->std_utoff_s;
}

/* The first change after t, or INT64_MAX when the rule has none. */
static int64_t s_rule_next(const s_tz_rule_t *rule, int64_t t)
{
    if (!rule->has_dst)
        return INT64_MAX;
    int64_t year = s_rule_year_of(rule, t);
    int64_t next = INT64_MAX;
    for (int64_t y = year - 1; y <= year + 2; y++) {
        int64_t start, end;
        s_rule_year(rule, y, &start, &end);
        if (start > t && start < next)
            next = start;
        if (end > t && end < next)
            next = end;
    }
    return next;
}

/* ---------------------------------------------------------------- TZif files (RFC 8536) */

typedef struct s_zone_t {
    char *name;              /* as asked for, e.g. "Europe/Berlin" */
    int64_t *at;             /* transition instants, strictly ascending; NULL when count is 0 */
    int32_t *utoff_s;        /* UTC offset in force from at[i] on */
    size_t count;            /* transitions */
    int32_t initial_utoff_s; /* before at[0]: time type 0 */
    bool has_rule;           /* the footer holds a TZ rule... */
    s_tz_rule_t rule;        /* ...which governs instants from at[count - 1] on */
    struct s_zone_t *next;   /* next zone in the same cache bucket */
} s_zone_t;

typedef struct {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} s_tzif_counts_t;

static uint32_t s_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int64_t s_be64(const uint8_t *b)
{
    return (int64_t)((uint64_t)s_be32(b) << 32 | s_be32(b + 4));
}

static int s_tzif_header(const uint8_t *data, size_t size, s_tzif_counts_t *counts)
{
    if (size < 44 || memcmp(data, "TZif", 4) != 0)
        return -1;
    counts->isutcnt = s_be32(data + 20);
    counts->isstdcnt = s_be32(data + 24);
    counts->leapcnt = s_be32(data + 28);
    counts->timecnt = s_be32(data + 32);
    counts->typecnt = s_be32(data + 36);
    counts->charcnt = s_be32(data + 40);
    return 0;
}

/* Bytes of the data block after a header, for 4- or 8-byte times. */
static uint64_t s_tzif_block_bytes(const s_tzif_counts_t *c, unsigned time_size)
{
    return (uint64_t)c->timecnt * (time_size + 1) + (uint64_t)c->typecnt * 6 + c->charcnt +
           (uint64_t)c->leapcnt * (time_size + 4) + c->isstdcnt + c->isutcnt;
}

static void s_zone_free(s_zone_t **zone_p)
{
    s_zone_t *zone = *zone_p;
    if (!zone)
        return;
    free(zone->name);
    free(zone->at);
    free(zone->utoff_s);
    free(zone);
    *zone_p = NULL;
}

/* Reads the footer "\n<TZ rule>\n" that follows the 64-bit block. */
static int s_tzif_footer(s_zone_t *zone, const uint8_t *footer, size_t size)
{
    if (size < 2 || footer[0] != '\n')
        return -1;
    const uint8_t *end = memchr(footer + 1, '\n', size - 1);
    if (!end)
        return -1;
    size_t len = (size_t)(end - footer - 1);
    if (len == 0)
        return 0; /* no rule: the last transition's offset holds forever */
    char text[S_MAX_FOOTER];
    if (len >= sizeof text || memchr(footer + 1, '\0', len))
        return -1;
    memcpy(text, footer + 1, len);
    text[len] = '\0';
    if (s_tz_rule_parse(text, &zone->rule))
        return -1;
    zone->has_rule = true;
    return 0;
}

/* Fills zone's table and rule from a whole TZif file. Returns 0, or -1 with a reason. */
static int s_tzif_parse(s_zone_t *zone, const uint8_t *data, size_t size, char *error,
                        size_t error_size)
{
    s_tzif_counts_t c;
    if (s_tzif_header(data, size, &c)) {
        snprintf(error, error_size, "time zone '%s' is not a TZif file", zone->name);
        return -1;
    }
    const char *malformed = NULL;
    const uint8_t *block = data + 44;
    size_t left = size - 44;
    unsigned time_size = 4;
    if (data[4] >= '2') { /* skip the 32-bit block; use the 64-bit one and its footer */
        uint64_t skip = s_tzif_block_bytes(&c, 4);
        if (skip > left || s_tzif_header(block + skip, left - (size_t)skip, &c)) {
            malformed = "is truncated";
            goto fail;
        }
        block += skip + 44;
        left -= (size_t)skip + 44;
        time_size = 8;
    } else if (data[4] != '\0') {
        malformed = "has an unknown version";
        goto fail;
    }
    uint64_t bytes = s_tzif_block_bytes(&c, time_size);
    if (bytes > left) {
        malformed = "is truncated";
        goto fail;
    }
    if (c.leapcnt != 0) {
        malformed = "counts leap seconds (use the zone without right/)";
        goto fail;
    }
    if (c.typecnt == 0 || c.typecnt > 256 || c.charcnt == 0 ||
        (c.isstdcnt != 0 && c.isstdcnt != c.typecnt) ||
        (c.isutcnt != 0 && c.isutcnt != c.typecnt)) {
        malformed = "has inconsistent counts";
        goto fail;
    }
    const uint8_t *times = block;
    const uint8_t *type_of = times + (size_t)c.timecnt * time_size;
    const uint8_t *types = type_of + c.timecnt;
    for (uint32_t i = 0; i < c.typecnt; i++) {
        int32_t utoff = (int32_t)s_be32(types + 6 * i);
        if (utoff < -S_MAX_UTOFF_S || utoff > S_MAX_UTOFF_S || types[6 * i + 5] >= c.charcnt) {
            malformed = "has an invalid local time type";
            goto fail;
        }
    }
    zone->initial_utoff_s = (int32_t)s_be32(types);
    if (c.timecnt > 0) {
        zone->at = malloc(c.timecnt * sizeof *zone->at);
        zone->utoff_s = malloc(c.timecnt * sizeof *zone->utoff_s);
        if (!zone->at || !zone->utoff_s) {
            snprintf(error, error_size, "out of memory loading time zone '%s'", zone->name);
            return -1;
        }
    }
    for (uint32_t i = 0; i < c.timecnt; i++) {
        const uint8_t *b = times + (size_t)i * time_size;
        int64_t at = time_size == 8 ? s_be64(b) : (int32_t)s_be32(b);
        if ((i > 0 && at <= zone->at[i - 1]) || type_of[i] >= c.typecnt) {
            malformed = "has unordered or dangling transitions";
            goto fail;
        }
        zone->at[i] = at;
        zone->utoff_s[i] = (int32_t)s_be32(types + 6 * type_of[i]);
    }
    zone->count = c.timecnt;
    if (time_size == 8 && s_tzif_footer(zone, block + bytes, left - (size_t)bytes)) {
        malformed = "has a missing or unreadable TZ rule footer";
        goto fail;
    }
    return 0;
fail:
    snprintf(error, error_size, "time zone file '%s' %s", zone->name, malformed);
    return -1;
}

/* Reads a whole regular file of at most S_MAX_TZIF_BYTES. Returns a buffer the caller frees,
   or NULL with a reason. O_NONBLOCK keeps a FIFO planted in the database from hanging us. */
static uint8_t *s_read_file(const char *path, const char *name, size_t *size, char *error,
                            size_t error_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(error, error_size, "time zone '%s' cannot be opened (errno %d)", name, errno);
        return NULL;
    }
    uint8_t *data = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > S_MAX_TZIF_BYTES) {
        snprintf(error, error_size, "time zone '%s' is not a zone file", name);
        goto fail;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        snprintf(error, error_size, "out of memory loading time zone '%s'", name);
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(error, error_size, "time zone '%s' cannot be read (errno %d)", name,
                     n < 0 ? errno : 0);
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *size = got;
    return data;
fail:
    free(data);
    close(fd);
    return NULL;
}

/* The UTC offset of zone at t. */
static int32_t s_zone_utoff(const s_zone_t *zone, int64_t t)
{
    if (zone->count == 0 || t >= zone->at[zone->count - 1]) {
        if (zone->has_rule)
            return s_rule_utoff(&zone->rule, t);
        return zone->count ? zone->utoff_s[zone->count - 1] : zone->initial_utoff_s;
    }
    if (t < zone->at[0])
        return zone->initial_utoff_s;
    size_t lo = 0, hi = zone->count - 1; /* at[lo] <= t < at[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (zone->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return zone->utoff_s[lo];
}

/* The first instant after t at which zone's offset may change, or INT64_MAX for never. */
static int64_t s_zone_next_transition(const s_zone_t *zone, int64_t t)
{
    if (zone->count == 0 || t >= zone->at[zone->count - 1])
        return zone->has_rule ? s_rule_next(&zone->rule, t) : INT64_MAX;
    size_t lo = 0, hi = zone->count - 1; /* the answer is in at[lo..hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (zone->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return zone->at[lo];
}

/* ---------------------------------------------------------------- the zone cache */

struct schedule_zones_t {
    char *dir;                    /* the tz database directory, resolved by realpath */
    size_t dir_len;               /* strlen(dir) */
    s_zone_t *buckets[S_BUCKETS]; /* loaded zones, chained by name hash */
};

schedule_zones_t *schedule_zones_new(const char *zoneinfo_dir, char *error, size_t error_size)
{
    const char *dir = zoneinfo_dir ? zoneinfo_dir : SCHEDULE_ZONEINFO_DIR;
    schedule_zones_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    struct stat st;
    self->dir = realpath(dir, NULL);
    if (!self->dir || stat(self->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(error, error_size, "tz database directory %s is missing or unreadable", dir);
        free(self->dir);
        free(self);
        return NULL;
    }
    self->dir_len = strlen(self->dir);
    return self;
}

void schedule_zones_destroy(schedule_zones_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    schedule_zones_t *self = *self_p;
    for (size_t i = 0; i < S_BUCKETS; i++) {
        s_zone_t *zone = self->buckets[i];
        while (zone) {
            s_zone_t *next = zone->next;
            s_zone_free(&zone);
            zone = next;
        }
    }
    free(self->dir);
    free(self);
    *self_p = NULL;
}

/* Checks the shape of a zone name before it goes near the file system. The name is not
   echoed in errors: it may be anything a client sent. */
static int s_zone_name_check(const char *name, char *error, size_t error_size)
{
    const char *why = NULL;
    size_t len = name ? strnlen(name, SCHEDULE_MAX_ZONE_NAME + 1) : 0;
    if (len == 0)
        why = "is empty";
    else if (len > SCHEDULE_MAX_ZONE_NAME)
        why = "is too long";
    bool component_start = true;
    for (size_t i = 0; !why && i < len; i++) {
        char c = name[i];
        if (c == '/') {
            if (component_start)
                why = "has a leading '/' or an empty component";
            component_start = true;
        } else if (component_start && c == '.') {
            why = "has a component starting with '.'";
        } else if (!s_is_alpha(c) && !s_is_digit(c) && c != '.' && c != '_' && c != '-' &&
                   c != '+') {
            why = "has a character other than A-Z a-z 0-9 . _ + - /";
        } else {
            component_start = false;
        }
    }
    if (!why && component_start)
        why = "ends with '/'";
    /* Files in the database directory that are not zones but follow the host's settings. */
    if (!why && (strcmp(name, "localtime") == 0 || strcmp(name, "posixrules") == 0))
        why = "names the host's zone, not an IANA zone";
    if (why) {
        snprintf(error, error_size, "time zone name %s", why);
        return -1;
    }
    return 0;
}

static bool s_is_inside(const char *dir, size_t dir_len, const char *path)
{
    if (dir_len == 1) /* the database is "/" */
        return path[0] == '/' && path[1] != '\0';
    return strncmp(path, dir, dir_len) == 0 && path[dir_len] == '/';
}

/* Reads and parses one zone of the database. Returns it (caller owns), or NULL with a
   reason. */
static s_zone_t *s_zone_load(schedule_zones_t *self, const char *name, char *error,
                             size_t error_size)
{
    char path[PATH_MAX];
    char *real = NULL;
    uint8_t *data = NULL;
    s_zone_t *zone = NULL;
    size_t size = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", self->dir, name) >= sizeof path) {
        snprintf(error, error_size, "time zone path is too long");
        goto fail;
    }
    real = realpath(path, NULL);
    if (!real) {
        if (errno == ENOENT || errno == ENOTDIR)
            snprintf(error, error_size, "unknown time zone '%s'", name);
        else
            snprintf(error, error_size, "time zone '%s' cannot be resolved (errno %d)", name,
                     errno);
        goto fail;
    }
    if (!s_is_inside(self->dir, self->dir_len, real)) {
        snprintf(error, error_size, "time zone '%s' leads outside the tz database", name);
        goto fail;
    }
    data = s_read_file(real, name, &size, error, error_size);
    if (!data)
        goto fail;
    zone = calloc(1, sizeof *zone);
    if (!zone || !(zone->name = strdup(name))) {
        snprintf(error, error_size, "out of memory loading time zone '%s'", name);
        goto fail;
    }
    if (s_tzif_parse(zone, data, size, error, error_size))
        goto fail;
    free(real);
    free(data);
    return zone;
fail:
    s_zone_free(&zone);
    free(real);
    free(data);
    return NULL;
}

/* Returns the cached zone called name, loading it on first use; NULL with a reason. */
static const s_zone_t *s_zones_get(schedule_zones_t *self, const char *name, char *error,
                                   size_t error_size)
{
    if (s_zone_name_check(name, error, error_size))
        return NULL;
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const char *c = name; *c; c++)
        hash = (hash ^ (uint8_t)*c) * 16777619u;
    s_zone_t **bucket = &self->buckets[hash % S_BUCKETS];
    for (s_zone_t *zone = *bucket; zone; zone = zone->next)
        if (strcmp(zone->name, name) == 0)
            return zone;
    s_zone_t *zone = s_zone_load(self, name, error, error_size);
    if (!zone)
        return NULL;
    zone->next = *bucket;
    *bucket = zone;
    return zone;
}

int schedule_zones_require(schedule_zones_t *self, const char *zone_name, char *error,
                           size_t error_size)
{
    return s_zones_get(self, zone_name, error, error_size) ? 0 : -1;
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
    const s_zone_t *zone;                  /* borrowed from zones */
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
    self->zone = s_zones_get(zones, zone_name, zone_error, sizeof zone_error);
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
    size_t size = strlen(self->zone->name) + 1 + self->group_count * 20 + 1;
    char *text = malloc(size);
    if (!text)
        return NULL;
    size_t used = (size_t)snprintf(text, size, "%s|", self->zone->name);
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
    return self->zone->name;
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

static int s_is_open(const schedule_t *self, const s_zone_t *zone, time_t now)
{
    int64_t t = (int64_t)now;
    if (t < S_MIN_TIME || t > S_MAX_TIME)
        return -1;
    return s_open_local(self, t + s_zone_utoff(zone, t));
}

/* Walks the stretches of constant UTC offset from now on: inside one, the next change is the
   next flip of local time; at its end, the state is evaluated in the new offset. */
static time_t s_next_change(const schedule_t *self, const s_zone_t *zone, time_t now)
{
    int64_t t = (int64_t)now;
    if (t < S_MIN_TIME || t > S_MAX_TIME || self->flip_count == 0)
        return -1;
    int64_t limit = t + SCHEDULE_HORIZON_S;
    int32_t utoff = s_zone_utoff(zone, t);
    bool was_open = s_open_local(self, t + utoff);
    for (;;) {
        int64_t stretch_end = s_zone_next_transition(zone, t);
        int64_t w = s_week_second(t + utoff);
        size_t i = s_flips_upto(self, w);
        int64_t flip = i < self->flip_count ? self->flips_s[i] : self->flips_s[0] + S_WEEK_S;
        int64_t change = t + (flip - w);
        if (change < stretch_end)
            return change <= limit ? (time_t)change : -1;
        if (stretch_end > limit)
            return -1;
        t = stretch_end;
        utoff = s_zone_utoff(zone, t);
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
    const s_zone_t *zone = s_zones_get(self->zones, zone_name, error, sizeof error);
    return zone ? s_is_open(self, zone, now) : -1;
}

time_t schedule_next_change(const schedule_t *self, time_t now)
{
    return s_next_change(self, self->zone, now);
}

time_t schedule_next_change_in_zone(const schedule_t *self, const char *zone_name, time_t now)
{
    char error[S_ZONE_ERROR];
    const s_zone_t *zone = s_zones_get(self->zones, zone_name, error, sizeof error);
    return zone ? s_next_change(self, zone, now) : -1;
}

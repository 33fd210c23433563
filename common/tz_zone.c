/*  tz_zone.c - zones of the system tz database, read straight from their TZif files; see
    tz_zone.h for why we do not use TZ + localtime_r.

    Sections, in order: calendar arithmetic; POSIX TZ rules (the footer of a TZif file, used
    for instants after its table); TZif files; looking up offsets; the zone cache.

    A zone is its table of transitions (instant, UTC offset in force from then on), the
    offset before the first one, and the footer's rule for instants after the last one. The
    cache owns every zone it loaded, chained in hash buckets by name, and hands out borrowed
    const pointers that stay valid until tz_zones_destroy. Single-threaded; no global state;
    nothing here logs or reads the environment. */
#include "tz_zone.h"

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
#define S_MAX_TZIF_BYTES (256 * 1024) /* real TZif files are under 4 KiB */
#define S_MAX_UTOFF_S (26 * 3600)     /* RFC 8536 bounds: -25:59:59 .. +25:59:59 */
#define S_MAX_FOOTER 128              /* bytes of a TZ rule string */
#define S_BUCKETS 64                  /* zone cache hash buckets */

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

struct tz_zone_t {
    char *name;              /* as asked for, e.g. "Europe/Berlin" */
    int64_t *at;             /* transition instants, strictly ascending; NULL when count is 0 */
    int32_t *utoff_s;        /* UTC offset in force from at[i] on */
    size_t count;            /* transitions */
    int32_t initial_utoff_s; /* before at[0]: time type 0 */
    bool has_rule;           /* the footer holds a TZ rule... */
    s_tz_rule_t rule;        /* ...which governs instants from at[count - 1] on */
    struct tz_zone_t *next;  /* next zone in the same cache bucket */
};

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

static void s_zone_free(tz_zone_t **zone_p)
{
    tz_zone_t *zone = *zone_p;
    if (!zone)
        return;
    free(zone->name);
    free(zone->at);
    free(zone->utoff_s);
    free(zone);
    *zone_p = NULL;
}

/* Reads the footer "\n<TZ rule>\n" that follows the 64-bit block. */
static int s_tzif_footer(tz_zone_t *zone, const uint8_t *footer, size_t size)
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
static int s_tzif_parse(tz_zone_t *zone, const uint8_t *data, size_t size, char *error,
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

/* ---------------------------------------------------------------- looking up offsets */

const char *tz_zone_name(const tz_zone_t *zone)
{
    return zone->name;
}

int32_t tz_zone_offset_at(const tz_zone_t *zone, int64_t t)
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

int64_t tz_zone_next_transition(const tz_zone_t *zone, int64_t t)
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

struct tz_zones_t {
    char *dir;                     /* the tz database directory, resolved by realpath */
    size_t dir_len;                /* strlen(dir) */
    tz_zone_t *buckets[S_BUCKETS]; /* loaded zones, chained by name hash */
};

tz_zones_t *tz_zones_new(const char *zoneinfo_dir, char *error, size_t error_size)
{
    const char *dir = zoneinfo_dir ? zoneinfo_dir : TZ_ZONEINFO_DIR;
    tz_zones_t *self = calloc(1, sizeof *self);
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

void tz_zones_destroy(tz_zones_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tz_zones_t *self = *self_p;
    for (size_t i = 0; i < S_BUCKETS; i++) {
        tz_zone_t *zone = self->buckets[i];
        while (zone) {
            tz_zone_t *next = zone->next;
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
    size_t len = name ? strnlen(name, TZ_ZONE_MAX_NAME + 1) : 0;
    if (len == 0)
        why = "is empty";
    else if (len > TZ_ZONE_MAX_NAME)
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
static tz_zone_t *s_zone_load(tz_zones_t *self, const char *name, char *error, size_t error_size)
{
    char path[PATH_MAX];
    char *real = NULL;
    uint8_t *data = NULL;
    tz_zone_t *zone = NULL;
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

const tz_zone_t *tz_zones_require(tz_zones_t *self, const char *name, char *error,
                                  size_t error_size)
{
    if (s_zone_name_check(name, error, error_size))
        return NULL;
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const char *c = name; *c; c++)
        hash = (hash ^ (uint8_t)*c) * 16777619u;
    tz_zone_t **bucket = &self->buckets[hash % S_BUCKETS];
    for (tz_zone_t *zone = *bucket; zone; zone = zone->next)
        if (strcmp(zone->name, name) == 0)
            return zone;
    tz_zone_t *zone = s_zone_load(self, name, error, error_size);
    if (!zone)
        return NULL;
    zone->next = *bucket;
    *bucket = zone;
    return zone;
}

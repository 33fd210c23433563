/*  schedule.h - weekly opening hours evaluated in an IANA time zone.

    Agents' online schedules and the widget's visibility windows are both "a zone and a set of
    weekly intervals of local wall-clock time". This class parses that from its text form,
    formats it back, and answers two questions about an instant: is it open, and when does that
    next change (so the presence worker can emit an availability event at the right moment).

    Text form (strict; what schedule_format writes and DynamoDB stores):

        schedule = zone "|" [ group *( "," group ) ]
        group    = days " " start "-" end
        days     = day / day "-" day
        day      = "mon" / "tue" / "wed" / "thu" / "fri" / "sat" / "sun"
        start    = HH ":" MM          ; 00:00 .. 23:59
        end      = HH ":" MM          ; 00:00 .. 24:00, different from start

      e.g. "Europe/Berlin|mon-fri 09:00-17:00,sat 10:00-14:00"
           "Asia/Dubai|sun-thu 08:00-16:00"         (a day range may wrap past sunday)
           "America/New_York|fri 22:00-02:00"       (end <= start: crosses midnight into sat)
           "Europe/Paris|"                          (no groups: never open)

    zone is an IANA name (at most SCHEDULE_MAX_ZONE_NAME bytes of A-Z a-z 0-9 . _ + - and '/'
    between non-empty components that do not start with '.'), naming a TZif file of the system
    tz database; after following links the file must lie inside the database directory, so
    "../x" and "/etc/localtime" are refused, and so are "localtime" and "posixrules" (the
    host's settings, not zones) and leap-second ("right/...") zones. Lowercase day names only, no spaces other than the one before the
    times, at most SCHEDULE_MAX_GROUPS groups and SCHEDULE_MAX_TEXT bytes. Groups may overlap;
    the schedule is their union.

    Semantics. Each group opens, on each of its days, the half-open wall-clock interval
    [start, end) of that day; when end <= start the interval runs on into the next day until
    end. An instant is open when its local wall-clock time in the zone - the UTC instant plus
    the zone's UTC offset at that instant - falls inside the union. Hence across DST: on a
    spring-forward day, wall-clock times in the skipped hour never occur, so an interval inside
    the gap has no instants and one that overlaps it is open only for the part that exists; on
    a fall-back day, wall-clock times that occur twice are open both times. Times between
    00:00 and 24:00 are minute-precise; the zone's offset is second-precise.

    Time zones. The tz database is read directly: each zone's TZif file (version 2+ 64-bit data,
    or version 1) is parsed once into a table of transitions, and instants after the table are
    evaluated with the POSIX TZ rule in the file's footer (RFC 8536). We do not switch the
    process's TZ with setenv + tzset + localtime_r: that is process-global state (any other
    localtime call, e.g. in a logger, would see the wrong zone), costs a file read whenever the
    zone changes, and cannot evaluate two zones (agent's and customer's) side by side.
    Parsing TZif ourselves is reentrant, has no global state, and makes a lookup a binary
    search. Zones are cached in a schedule_zones_t keyed by name; every schedule borrows its
    zone from there. The cache holds only zones that exist in the database, so it is bounded
    by the database's size (a few thousand names at most); it never reloads, so a tzdata
    upgrade takes effect at the next process start.

    Threading: a schedule_zones_t and its schedules belong to one thread (lookups may load a
    zone into the cache). Nothing here logs, reads the environment or touches global state. */
#ifndef SCHEDULE_H
#define SCHEDULE_H

#include <stddef.h>
#include <time.h>

#define SCHEDULE_ZONEINFO_DIR "/usr/share/zoneinfo"
#define SCHEDULE_MAX_TEXT 1024         /* bytes of schedule text, without the NUL */
#define SCHEDULE_MAX_ZONE_NAME 64      /* bytes of a zone name, without the NUL */
#define SCHEDULE_MAX_GROUPS 32         /* comma-separated groups in one schedule */
#define SCHEDULE_HORIZON_S (8 * 86400) /* how far schedule_next_change looks ahead */

typedef struct schedule_zones_t schedule_zones_t;
typedef struct schedule_t schedule_t;

/* Returns an empty zone cache reading the tz database in zoneinfo_dir (NULL means
   SCHEDULE_ZONEINFO_DIR), or NULL when that directory cannot be resolved or memory runs out
   (why is written to error). Borrows nothing: the directory name is copied. */
schedule_zones_t *schedule_zones_new(const char *zoneinfo_dir, char *error, size_t error_size);

/* Frees the cache and every zone in it; sets *self_p to NULL. Accepts NULL. Every schedule
   made with this cache must be destroyed first. */
void schedule_zones_destroy(schedule_zones_t **self_p);

/* Makes sure zone_name is a valid zone of the database and is loaded into the cache. Returns
   0, or -1 when the name is malformed, does not exist, is not a usable TZif file, or memory
   runs out (why is written to error; nothing is cached). Use it to validate a zone at the
   edge, e.g. the customer's zone sent by the widget. */
int schedule_zones_require(schedule_zones_t *self, const char *zone_name, char *error,
                           size_t error_size);

/* Parses text (see the grammar above) into a new schedule that borrows zones, which must
   outlive it. Returns the schedule, or NULL when text is malformed, names an unknown zone, or
   memory runs out; then a one-line reason, with the 1-based column for syntax errors, is
   written to error. */
schedule_t *schedule_new(schedule_zones_t *zones, const char *text, char *error, size_t error_size);

/* Frees the schedule and sets *self_p to NULL. Accepts NULL. */
void schedule_destroy(schedule_t **self_p);

/* Returns the schedule's text form, a new string the caller frees, or NULL when memory runs
   out. Parsing the result gives an equal schedule; text already in this form comes back
   byte for byte. */
char *schedule_format(const schedule_t *self);

/* Returns the schedule's zone name, borrowed from the schedule. This function can't fail. */
const char *schedule_zone(const schedule_t *self);

/* Returns 1 when now falls inside the schedule in its own zone, 0 when it does not, or -1
   when now lies outside the years 1..9999. Test for open with == 1. */
int schedule_is_open(const schedule_t *self, time_t now);

/* Same, but evaluates the schedule's weekly intervals in zone_name's wall-clock time instead
   (the widget's "customer's local time" mode). Returns 1, 0, or -1 when now is out of range
   or zone_name is not a valid zone (the zone is loaded into the schedule's cache on first
   use). */
int schedule_is_open_in_zone(const schedule_t *self, const char *zone_name, time_t now);

/* Returns the first instant after now at which schedule_is_open changes value, or -1 when it
   does not change in (now, now + SCHEDULE_HORIZON_S] or now is out of range. At the returned
   instant the new state already holds. */
time_t schedule_next_change(const schedule_t *self, time_t now);

/* Same as schedule_next_change, evaluated in zone_name; also -1 when the zone is invalid. */
time_t schedule_next_change_in_zone(const schedule_t *self, const char *zone_name, time_t now);

#endif

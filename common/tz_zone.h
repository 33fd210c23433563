/*  tz_zone.h - zones of the system tz database, read from their TZif files and cached.

    A tz_zone_t answers two questions about a UTC instant: what is the zone's UTC offset then,
    and when does that offset next change. Each zone's TZif file (version 2+ 64-bit data, or
    version 1) is parsed once into a table of transitions, and instants after the table are
    evaluated with the POSIX TZ rule in the file's footer (RFC 8536). We do not switch the
    process's TZ with setenv + tzset + localtime_r: that is process-global state (any other
    localtime call, e.g. in a logger, would see the wrong zone), costs a file read whenever the
    zone changes, and cannot evaluate two zones side by side. Parsing TZif ourselves is
    reentrant, has no global state, and makes a lookup a binary search.

    Zones live in a tz_zones_t cache keyed by name, which owns them; callers borrow const
    pointers that stay valid until the cache is destroyed. A zone name is at most
    TZ_ZONE_MAX_NAME bytes of A-Z a-z 0-9 . _ + - and '/' between non-empty components that do
    not start with '.'; after following links its file must lie inside the database directory,
    so "../x" and "/etc/localtime" are refused, and so are "localtime" and "posixrules" (the
    host's settings, not zones) and leap-second ("right/...") zones. The cache holds only zones
    that exist in the database, so it is bounded by the database's size; it never reloads, so
    a tzdata upgrade takes effect at the next process start.

    Instants are seconds since the epoch (UTC) as int64_t, so any time_t can be passed.

    Threading: a tz_zones_t and its zones belong to one thread (a lookup may load a zone).
    Nothing here logs, reads the environment or touches global state. Does not know about
    calendars, wall-clock formatting or abbreviations; only offsets. */
#ifndef TZ_ZONE_H
#define TZ_ZONE_H

#include <stddef.h>
#include <stdint.h>

#define TZ_ZONEINFO_DIR "/usr/share/zoneinfo"
#define TZ_ZONE_MAX_NAME 64 /* bytes of a zone name, without the NUL */

typedef struct tz_zones_t tz_zones_t;
typedef struct tz_zone_t tz_zone_t;

/* Returns an empty zone cache reading the tz database in zoneinfo_dir (NULL means
   TZ_ZONEINFO_DIR), or NULL when that directory cannot be resolved or memory runs out (why
   is written to error). Borrows nothing: the directory name is copied. */
tz_zones_t *tz_zones_new(const char *zoneinfo_dir, char *error, size_t error_size);

/* Frees the cache and every zone in it; sets *self_p to NULL. Accepts NULL. Every pointer
   tz_zones_require returned becomes invalid. */
void tz_zones_destroy(tz_zones_t **self_p);

/* Returns the zone called name, loading it into the cache on first use. The zone is borrowed
   from the cache and lives as long as it. Returns NULL when the name is malformed, does not
   exist, is not a usable TZif file, or memory runs out; then a one-line reason is written to
   error and nothing is cached. A malformed name is not echoed in the reason. */
const tz_zone_t *tz_zones_require(tz_zones_t *self, const char *name, char *error,
                                  size_t error_size);

/* Returns the zone's name as it was asked for, e.g. "Europe/Berlin", borrowed from the zone.
   This function can't fail. */
const char *tz_zone_name(const tz_zone_t *zone);

/* Returns the zone's UTC offset at instant t in seconds, east of Greenwich positive
   (-25:59:59 .. +25:59:59). This function can't fail. */
int32_t tz_zone_offset_at(const tz_zone_t *zone, int64_t t);

/* Returns the first instant after t at which the zone's offset may change, or INT64_MAX
   when it never changes again. Some transitions only change the abbreviation or DST flag,
   so the offset on both sides may be equal. This function can't fail. */
int64_t tz_zone_next_transition(const tz_zone_t *zone, int64_t t);

#endif

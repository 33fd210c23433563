/*  plog.h - Parley's structured logger: one logfmt line per event on stderr.

    A line looks like
      ts=2026-11-29T03:04:05.678Z level=warn component=broker event=frame_rejected reason=...
    Callers pass the event name and the remaining key=value fields as a printf format. Each line
    goes out in one write(2), so lines of concurrent processes never interleave.

    What a caller must never log: message text, tokens, secrets. Identify things by ids and sizes.
    Values that may hold spaces go through plog_quote(). Not thread-safe to reconfigure; logging
    itself is safe from any thread. */
#ifndef PLOG_H
#define PLOG_H

#include <stddef.h>

typedef enum { PLOG_DEBUG = 0, PLOG_INFO, PLOG_WARN, PLOG_ERROR } plog_level_t;

/* Sets the component name written on every line and the lowest level written. */
void plog_init(const char *component, plog_level_t level);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 when s is none of them. */
int plog_level_parse(const char *s, plog_level_t *level);

/* True when a line at this level would be written (to skip costly formatting). */
int plog_enabled(plog_level_t level);

/* Writes one line. fields is a printf format of "key=value" pairs separated by spaces (may be
   NULL or ""). Never fails; a line longer than 2 KiB is cut. */
void plog_write(plog_level_t level, const char *event, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s into buf as a logfmt value: quoted when it holds spaces, quotes or '=', with
   control characters replaced by '?', cut to fit size. Returns buf. */
const char *plog_quote(char *buf, size_t size, const char *s);

#define plog_debug(event, ...) plog_write(PLOG_DEBUG, event, __VA_ARGS__)
#define plog_info(event, ...) plog_write(PLOG_INFO, event, __VA_ARGS__)
#define plog_warn(event, ...) plog_write(PLOG_WARN, event, __VA_ARGS__)
#define plog_error(event, ...) plog_write(PLOG_ERROR, event, __VA_ARGS__)

#endif

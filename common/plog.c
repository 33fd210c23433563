/*  plog.c - logfmt lines on stderr; see plog.h. Holds the component name and level, set once
    at start-up by plog_init(). */
#include "plog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PLOG_LINE_MAX 2048

static char s_component[32] = "parley";
static plog_level_t s_level = PLOG_INFO;
static const char *s_level_names[] = {"debug", "info", "warn", "error"};

void plog_init(const char *component, plog_level_t level)
{
    snprintf(s_component, sizeof s_component, "%s", component);
    s_level = level;
}

int plog_level_parse(const char *s, plog_level_t *level)
{
    for (int i = PLOG_DEBUG; i <= PLOG_ERROR; i++)
        if (strcmp(s, s_level_names[i]) == 0) {
            *level = (plog_level_t)i;
            return 0;
        }
    return -1;
}

int plog_enabled(plog_level_t level)
{
    return level >= s_level;
}

void plog_write(plog_level_t level, const char *event, const char *fields, ...)
{
    if (level < s_level)
        return;
    char line[PLOG_LINE_MAX];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s component=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), s_level_names[level], s_component,
                     event);
    if (fields && *fields && n > 0 && n < (int)sizeof line - 2) {
        line[n++] = ' ';
        va_list args;
        va_start(args, fields);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fields, args);
        va_end(args);
        if (m > 0)
            n += m;
    }
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t written = write(STDERR_FILENO, line, (size_t)n);
    (void)written; /* nothing sensible to do when stderr is gone */
}

const char *plog_quote(char *buf, size_t size, const char *s)
{
    if (size < 3) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    int needs_quotes = *s == '\0' || strpbrk(s, " \"=\t") != NULL;
    size_t out = 0;
    if (needs_quotes)
        buf[out++] = '"';
    for (; *s && out < size - 2; s++) {
        unsigned char c = (unsigned char)*s;
        buf[out++] = (c < 0x20 || c == 0x7f || c == '"') ? '?' : (char)c;
    }
    if (needs_quotes)
        buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

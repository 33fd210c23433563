/*  json_writer.c - see json_writer.h. */
#include "json_writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for `more` bytes after length. Returns false (and fails the object) when out of
   memory. */
static bool s_reserve(json_writer_t *self, size_t more)
{
    if (self->failed)
        return false;
    if (self->length + more <= self->capacity)
        return true;
    size_t capacity = self->capacity ? self->capacity : 256;
    while (capacity < self->length + more)
        capacity *= 2;
    char *grown = realloc(self->data, capacity);
    if (!grown) {
        self->failed = true;
        return false;
    }
    self->data = grown;
    self->capacity = capacity;
    return true;
}

static void s_raw(json_writer_t *self, const char *bytes, size_t length)
{
    if (s_reserve(self, length)) {
        memcpy(self->data + self->length, bytes, length);
        self->length += length;
    }
}

/* Bytes of the UTF-8 sequence starting at at (of at most left bytes), or 0 when it is not a
   valid one (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t s_utf8_sequence(const unsigned char *at, size_t left)
{
    unsigned char c = at[0];
    size_t need;
    uint32_t point;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2, point = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, point = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, point = c & 0x07;
    else
        return 0;
    if (need > left)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((at[i] & 0xC0) != 0x80)
            return 0;
        point = (point << 6) | (at[i] & 0x3F);
    }
    if ((need == 3 && point < 0x800) || (need == 4 && point < 0x10000) || point > 0x10FFFF ||
        (point >= 0xD800 && point <= 0xDFFF))
        return 0;
    return need;
}

/* Appends value as a JSON string (quotes included). */
static void s_string(json_writer_t *self, const char *value, size_t length)
{
    /* worst case: every byte a \u00XX escape */
    if (!s_reserve(self, 6 * length + 2))
        return;
    const unsigned char *in = (const unsigned char *)value;
    char *out = self->data + self->length;
    *out++ = '"';
    for (size_t i = 0; i < length;) {
        unsigned char c = in[i];
        if (c >= 0x80) {
            size_t sequence = s_utf8_sequence(in + i, length - i);
            if (!sequence) {
                self->failed = true;
                return;
            }
            memcpy(out, in + i, sequence);
            out += sequence;
            i += sequence;
            continue;
        }
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else if (c == '\r') {
            *out++ = '\\';
            *out++ = 'r';
        } else if (c == '\t') {
            *out++ = '\\';
            *out++ = 't';
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            out += 6;
        } else {
            *out++ = (char)c;
        }
        i++;
    }
    *out++ = '"';
    self->length = (size_t)(out - self->data);
}

/* Appends the comma (when needed) and "key":. */
static void s_key(json_writer_t *self, const char *key)
{
    if (self->members)
        s_raw(self, ",", 1);
    self->members = true;
    s_string(self, key, strlen(key));
    s_raw(self, ":", 1);
}

void json_writer_begin(json_writer_t *self)
{
    self->length = 0;
    self->failed = false;
    self->members = false;
    s_raw(self, "{", 1);
}

void json_writer_string(json_writer_t *self, const char *key, const char *value, size_t length)
{
    s_key(self, key);
    s_string(self, value, length);
}

void json_writer_cstring(json_writer_t *self, const char *key, const char *value)
{
    if (value)
        json_writer_string(self, key, value, strlen(value));
}

void json_writer_int(json_writer_t *self, const char *key, int64_t value)
{
    char digits[24];
    int length = snprintf(digits, sizeof digits, "%" PRId64, value);
    s_key(self, key);
    s_raw(self, digits, (size_t)length);
}

void json_writer_bool(json_writer_t *self, const char *key, bool value)
{
    s_key(self, key);
    s_raw(self, value ? "true" : "false", value ? 4 : 5);
}

int json_writer_end(json_writer_t *self)
{
    s_raw(self, "}", 1);
    if (self->failed) {
        self->length = 0;
        return -1;
    }
    return 0;
}

void json_writer_release(json_writer_t *self)
{
    free(self->data);
    *self = (json_writer_t){0};
}

/*  json_writer.h - writes one flat JSON object (string, integer and boolean members) into a
    growable buffer that is kept between objects: the gateway's hot frames (message, ack,
    persisted, typing, read, error) are built with no allocation per frame, where building a
    jansson object and dumping it costs a dozen or more.

    Strings are escaped as RFC 8259 requires (control characters, NUL included, as \u00XX); a
    string that is not valid UTF-8 fails the object, as jansson refuses such strings too. Keys are the caller's literals
    and are written as they are.

        json_writer_t w = {0};
        json_writer_begin(&w);
        json_writer_string(&w, "type", "ack", 3);
        json_writer_int(&w, "created_ms", 1700000000000);
        if (json_writer_end(&w) == 0)
            send(w.data, w.length);
        json_writer_release(&w);   (once, when done with the buffer) */
#ifndef JSON_WRITER_H
#define JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;      /* the object so far (not NUL-terminated); owned */
    size_t length;   /* bytes of it */
    size_t capacity; /* bytes allocated */
    bool failed;     /* out of memory or an invalid string since json_writer_begin */
    bool members;    /* a member was written (the next one needs a comma) */
} json_writer_t;

/* Starts a new object, dropping what the buffer held (its memory is kept). */
void json_writer_begin(json_writer_t *self);

/* Appends "key": "value" (length bytes of UTF-8, escaped). */
void json_writer_string(json_writer_t *self, const char *key, const char *value, size_t length);

/* Appends "key": value (a C string, escaped); nothing when value is NULL. */
void json_writer_cstring(json_writer_t *self, const char *key, const char *value);

/* Appends "key": value as a JSON integer. */
void json_writer_int(json_writer_t *self, const char *key, int64_t value);

/* Appends "key": true|false. */
void json_writer_bool(json_writer_t *self, const char *key, bool value);

/* Closes the object. Returns 0 when data[0..length) is the whole object, -1 when a string
   was not valid UTF-8 or memory ran out (then the buffer holds nothing usable). */
int json_writer_end(json_writer_t *self);

/* Frees the buffer; the writer can be used again (it starts empty). */
void json_writer_release(json_writer_t *self);

#endif

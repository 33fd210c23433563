/*  proto.h - Parley's wire messages: structs, encoders and decoders generated from
    proto_messages.def (the only place a field is described).

    For each message NAME in the table this header declares:

      typedef struct { ...fields..., bool has_<field>; } proto_NAME_t;
      int proto_NAME_encode (const proto_NAME_t *self, proto_buffer_t *out);
      int proto_NAME_decode (proto_NAME_t *self, const void *data, size_t size, proto_decode_error_t *err);

    encode: appends REQ fields and OPT fields whose has_ flag is set to out (a proto_buffer_t,
    which keeps small messages on the caller's stack). Returns 0, or -1 when memory runs out.
    decode: fills *self from size bytes; returns 0, or -1 with err->field and err->reason set
    (static strings) when the bytes are not exactly one map with valid fields: wrong types, out
    of range, too long, duplicated, a required field missing, or trailing bytes. TEXT and BIN
    fields point into data (borrowed): keep data alive while you use them. Never reads past size
    and never allocates. */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_NAME_MAX 63            /* service, type, instance, code, counter names */
#define PROTO_TEXT_MAX 512           /* human-readable error messages */
#define PROTO_COUNTERS_MAX 64        /* counters carried in one heartbeat */
#define PROTO_CAPACITY_MAX 10000     /* requests one worker may hold at once */
#define PROTO_TIMEOUT_MAX_MS 3600000 /* one hour */
#define PROTO_PAYLOAD_MAX (16u << 20)
#define PROTO_PROJECTS_MAX 32        /* projects one agent serves, in one message */
#define PROTO_SOCKETS_MAX 512        /* sockets in one batched heartbeat */
#define PROTO_MESSAGE_TEXT_MAX 32767 /* bytes of one chat message (Jira's comment limit) */
#define PROTO_INBOUND_BODY_MAX (1u << 20) /* an HTTP body Jira sent us */

typedef struct {
    const char *field;  /* the offending field, or "" for the message as a whole */
    const char *reason; /* what was wrong, e.g. "missing", "too long", "wrong type" */
} proto_decode_error_t;

typedef struct {
    char name[PROTO_NAME_MAX + 1];
    uint64_t value;
} proto_counter_t;

/* A growable byte buffer for encoding: the first PROTO_BUFFER_INLINE bytes live inside the
   struct (no allocation for the common small message), more go to the heap. */
#define PROTO_BUFFER_INLINE 480
typedef struct {
    uint8_t *data;      /* storage, or a heap block once grown */
    size_t size;        /* bytes written */
    size_t capacity;
    int failed;         /* set when growing failed; later appends are ignored */
    uint8_t storage[PROTO_BUFFER_INLINE];
} proto_buffer_t;

/* Makes an empty buffer. This function can't fail. */
void proto_buffer_init(proto_buffer_t *self);

/* Appends size bytes. Returns 0, or -1 when memory runs out (then failed is set). */
int proto_buffer_append(proto_buffer_t *self, const void *data, size_t size);

/* Frees any heap storage; the buffer is empty again and reusable. */
void proto_buffer_release(proto_buffer_t *self);

#define PROTO_MEMBER_U64(n, a, b) uint64_t n;
#define PROTO_MEMBER_U32(n, a, b) uint32_t n;
#define PROTO_MEMBER_BOOL(n, a, b) bool n;
#define PROTO_MEMBER_NAME(n, a, b) char n[PROTO_NAME_MAX + 1];
#define PROTO_MEMBER_TEXT(n, a, b)                                                               \
    const char *n;                                                                               \
    uint32_t n##_len;
#define PROTO_MEMBER_BIN(n, a, b)                                                                \
    const uint8_t *n;                                                                            \
    uint32_t n##_len;
#define PROTO_MEMBER_COUNTERS(n, a, b)                                                           \
    proto_counter_t n[b];                                                                        \
    uint32_t n##_count;
#define PROTO_MEMBER_NAMES(n, a, b)                                                              \
    char n[b][PROTO_NAME_MAX + 1];                                                               \
    uint32_t n##_count;
#define PROTO_MEMBER(kind, n, a, b, presence) PROTO_MEMBER_##kind(n, a, b) bool has_##n;

#define PROTO_DECLARE(msg)                                                                       \
    typedef struct {                                                                             \
        PROTO_FIELDS_##msg(PROTO_MEMBER)                                                         \
    } proto_##msg##_t;                                                                           \
    int proto_##msg##_encode(const proto_##msg##_t *self, proto_buffer_t *out);                  \
    int proto_##msg##_decode(proto_##msg##_t *self, const void *data, size_t size,               \
                             proto_decode_error_t *err);

#include "proto_messages.def"
PROTO_MESSAGES(PROTO_DECLARE)

/* Copies src into a NAME field, truncating to PROTO_NAME_MAX. This function can't fail. */
void proto_name_set(char *dest, const char *src);

/* True when s (len bytes) is a valid NAME value: 1..PROTO_NAME_MAX printable ASCII characters
   without spaces. */
bool proto_name_valid(const char *s, size_t len);

#endif

/*  proto_codec.c - encoders and decoders for every message in proto_messages.def.

    The functions are stamped out by the macros below from the one table; the s_decode_* helpers
    hold the validation rules per field kind. Encoding uses msgpack-c's packer; decoding uses the
    strict proto_reader (see proto_reader.h). Stateless and thread-safe. */
#include "proto.h"
#include "proto_reader.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

void proto_name_set(char *dest, const char *src)
{
    size_t len = strnlen(src, PROTO_NAME_MAX);
    memcpy(dest, src, len);
    dest[len] = '\0';
}

bool proto_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > PROTO_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

void proto_buffer_init(proto_buffer_t *self)
{
    self->data = self->storage;
    self->size = 0;
    self->capacity = sizeof self->storage;
    self->failed = 0;
}

int proto_buffer_append(proto_buffer_t *self, const void *data, size_t size)
{
    if (self->failed)
        return -1;
    if (size > self->capacity - self->size) {
        size_t capacity = self->capacity * 2;
        while (capacity - self->size < size)
            capacity *= 2;
        uint8_t *grown = self->data == self->storage ? malloc(capacity)
                                                     : realloc(self->data, capacity);
        if (!grown) {
            self->failed = 1;
            return -1;
        }
        if (self->data == self->storage)
            memcpy(grown, self->storage, self->size);
        self->data = grown;
        self->capacity = capacity;
    }
    memcpy(self->data + self->size, data, size);
    self->size += size;
    return 0;
}

void proto_buffer_release(proto_buffer_t *self)
{
    if (self->data != self->storage)
        free(self->data);
    proto_buffer_init(self);
}

/* msgpack-c's write callback into a proto_buffer_t. */
static int s_buffer_write(void *data, const char *bytes, size_t size)
{
    return proto_buffer_append(data, bytes, size);
}

static int s_fail(proto_decode_error_t *err, const char *field, const char *reason)
{
    if (err) {
        err->field = field;
        err->reason = reason;
    }
    return -1;
}

/* Each s_decode_* reads one value and returns NULL, or a static reason when it is invalid. */
static const char *s_decode_u64(proto_reader_t *r, uint64_t *out, uint64_t min, uint64_t max)
{
    uint64_t v;
    if (proto_read_uint(r, &v))
        return "wrong type";
    if (v < min || v > max)
        return "out of range";
    *out = v;
    return NULL;
}

static const char *s_decode_u32(proto_reader_t *r, uint32_t *out, uint64_t min, uint64_t max)
{
    uint64_t v = 0;
    const char *why = s_decode_u64(r, &v, min, max);
    if (!why)
        *out = (uint32_t)v;
    return why;
}

static const char *s_decode_bool(proto_reader_t *r, bool *out)
{
    return proto_read_bool(r, out) ? "wrong type" : NULL;
}

static const char *s_decode_name(proto_reader_t *r, char *out, uint64_t min, uint64_t max)
{
    const char *s;
    uint32_t len;
    if (proto_read_str(r, &s, &len))
        return "wrong type";
    if (len < min || len > max)
        return len < min ? "too short" : "too long";
    if (!proto_name_valid(s, len))
        return "invalid characters";
    memcpy(out, s, len);
    out[len] = '\0';
    return NULL;
}

static const char *s_decode_text(proto_reader_t *r, const char **out, uint32_t *len, uint64_t max)
{
    if (proto_read_str(r, out, len))
        return "wrong type";
    return *len > max ? "too long" : NULL;
}

static const char *s_decode_bin(proto_reader_t *r, const uint8_t **out, uint32_t *len,
                                uint64_t min, uint64_t max)
{
    if (proto_read_bin(r, out, len))
        return "wrong type";
    if (*len < min || *len > max)
        return *len < min ? "too short" : "too long";
    return NULL;
}

static const char *s_decode_counters(proto_reader_t *r, proto_counter_t *out, uint32_t *count,
                                     uint64_t max)
{
    uint32_t n;
    if (proto_read_map(r, &n))
        return "wrong type";
    if (n > max)
        return "too many entries";
    for (uint32_t i = 0; i < n; i++) {
        if (s_decode_name(r, out[i].name, 1, PROTO_NAME_MAX))
            return "invalid counter name";
        if (proto_read_uint(r, &out[i].value))
            return "invalid counter value";
    }
    *count = n;
    return NULL;
}

static const char *s_decode_names(proto_reader_t *r, char (*out)[PROTO_NAME_MAX + 1],
                                  uint32_t *count, uint64_t min, uint64_t max)
{
    uint32_t n;
    if (proto_read_array(r, &n))
        return "wrong type";
    if (n < min || n > max)
        return n < min ? "too few entries" : "too many entries";
    for (uint32_t i = 0; i < n; i++)
        if (s_decode_name(r, out[i], 1, PROTO_NAME_MAX))
            return "invalid entry";
    *count = n;
    return NULL;
}

#define PROTO_DECODE_U64(n, a, b) s_decode_u64(&r, &self->n, a, b)
#define PROTO_DECODE_U32(n, a, b) s_decode_u32(&r, &self->n, a, b)
#define PROTO_DECODE_BOOL(n, a, b) s_decode_bool(&r, &self->n)
#define PROTO_DECODE_NAME(n, a, b) s_decode_name(&r, self->n, a, b)
#define PROTO_DECODE_TEXT(n, a, b) s_decode_text(&r, &self->n, &self->n##_len, b)
#define PROTO_DECODE_BIN(n, a, b) s_decode_bin(&r, &self->n, &self->n##_len, a, b)
#define PROTO_DECODE_COUNTERS(n, a, b) s_decode_counters(&r, self->n, &self->n##_count, b)
#define PROTO_DECODE_NAMES(n, a, b) s_decode_names(&r, self->n, &self->n##_count, a, b)

#define PROTO_DECODE_FIELD(kind, n, a, b, presence)                                              \
    if (key_len == sizeof(#n) - 1 && memcmp(key, #n, key_len) == 0) {                            \
        if (self->has_##n)                                                                       \
            return s_fail(err, #n, "duplicated");                                                \
        const char *why = PROTO_DECODE_##kind(n, a, b);                                          \
        if (why)                                                                                 \
            return s_fail(err, #n, why);                                                         \
        self->has_##n = true;                                                                    \
        continue;                                                                                \
    }

#define PROTO_IS_REQUIRED_REQ 1
#define PROTO_IS_REQUIRED_OPT 0
#define PROTO_CHECK_REQUIRED(kind, n, a, b, presence)                                            \
    if (PROTO_IS_REQUIRED_##presence && !self->has_##n)                                          \
        return s_fail(err, #n, "missing");

/* Packing helpers: each returns msgpack-c's status (0 on success). */
static int s_pack_key(msgpack_packer *pk, const char *key)
{
    size_t len = strlen(key);
    return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, key, len);
}

static int s_pack_counters(msgpack_packer *pk, const proto_counter_t *c, uint32_t n, uint32_t max)
{
    if (n > max)
        n = max;
    int rc = msgpack_pack_map(pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= s_pack_key(pk, c[i].name) | msgpack_pack_uint64(pk, c[i].value);
    return rc;
}

static int s_pack_names(msgpack_packer *pk, const char (*names)[PROTO_NAME_MAX + 1], uint32_t n,
                        uint32_t max)
{
    if (n > max)
        n = max;
    int rc = msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++)
        rc |= s_pack_key(pk, names[i]);
    return rc;
}

#define PROTO_ENCODE_U64(n, b) msgpack_pack_uint64(&pk, self->n)
#define PROTO_ENCODE_U32(n, b) msgpack_pack_uint32(&pk, self->n)
#define PROTO_ENCODE_BOOL(n, b) (self->n ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk))
#define PROTO_ENCODE_NAME(n, b) s_pack_key(&pk, self->n)
#define PROTO_ENCODE_TEXT(n, b)                                                                  \
    (msgpack_pack_str(&pk, self->n##_len) | msgpack_pack_str_body(&pk, self->n, self->n##_len))
#define PROTO_ENCODE_BIN(n, b)                                                                   \
    (msgpack_pack_bin(&pk, self->n##_len) | msgpack_pack_bin_body(&pk, self->n, self->n##_len))
#define PROTO_ENCODE_COUNTERS(n, b) s_pack_counters(&pk, self->n, self->n##_count, b)
#define PROTO_ENCODE_NAMES(n, b) s_pack_names(&pk, self->n, self->n##_count, b)

#define PROTO_PRESENT_REQ(flag) 1
#define PROTO_PRESENT_OPT(flag) (flag)
#define PROTO_COUNT_FIELD(kind, n, a, b, presence) fields += PROTO_PRESENT_##presence(self->has_##n);
#define PROTO_ENCODE_FIELD(kind, n, a, b, presence)                                              \
    if (PROTO_PRESENT_##presence(self->has_##n))                                                 \
        rc |= s_pack_key(&pk, #n) | PROTO_ENCODE_##kind(n, b);

#define PROTO_DEFINE(msg)                                                                        \
    int proto_##msg##_encode(const proto_##msg##_t *self, proto_buffer_t *out)                   \
    {                                                                                            \
        msgpack_packer pk;                                                                       \
        msgpack_packer_init(&pk, out, s_buffer_write);                                           \
        uint32_t fields = 0;                                                                     \
        PROTO_FIELDS_##msg(PROTO_COUNT_FIELD);                                                   \
        int rc = msgpack_pack_map(&pk, fields);                                                  \
        PROTO_FIELDS_##msg(PROTO_ENCODE_FIELD);                                                  \
        return rc != 0 || out->failed ? -1 : 0;                                                  \
    }                                                                                            \
                                                                                                 \
    int proto_##msg##_decode(proto_##msg##_t *self, const void *data, size_t size,               \
                             proto_decode_error_t *err)                                                 \
    {                                                                                            \
        memset(self, 0, sizeof *self);                                                           \
        proto_reader_t r;                                                                        \
        proto_reader_init(&r, data, size);                                                       \
        uint32_t count;                                                                          \
        if (proto_read_map(&r, &count))                                                          \
            return s_fail(err, "", "not a map");                                                 \
        for (uint32_t i = 0; i < count; i++) {                                                   \
            const char *key;                                                                     \
            uint32_t key_len;                                                                    \
            if (proto_read_str(&r, &key, &key_len))                                              \
                return s_fail(err, "", "key is not a string");                                   \
            PROTO_FIELDS_##msg(PROTO_DECODE_FIELD);                                              \
            if (proto_reader_skip(&r))                                                           \
                return s_fail(err, "", "malformed value");                                       \
        }                                                                                        \
        if (proto_reader_remaining(&r) != 0)                                                     \
            return s_fail(err, "", "trailing bytes");                                            \
        PROTO_FIELDS_##msg(PROTO_CHECK_REQUIRED);                                                \
        return 0;                                                                                \
    }

PROTO_MESSAGES(PROTO_DEFINE)

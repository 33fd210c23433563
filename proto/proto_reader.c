/*  proto_reader.c - strict MessagePack reader; see proto_reader.h for why it exists.

    Format reference: the MessagePack specification (type bytes 0x00-0xff). Big-endian lengths.
    Every function checks remaining bytes before it reads them. */
#include "proto_reader.h"

void proto_reader_init(proto_reader_t *self, const void *data, size_t size)
{
    self->pos = data;
    self->end = self->pos + size;
}

size_t proto_reader_remaining(const proto_reader_t *self)
{
    return (size_t)(self->end - self->pos);
}

/* Reads an n-byte big-endian unsigned number at p (n is 1, 2, 4 or 8). Caller checked bounds. */
static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads a header whose length field is n bytes after the type byte; returns the length through
   *len and the header size through *hdr, or -1 when the header itself is truncated. */
static int s_length(const proto_reader_t *self, int n, uint64_t *len, size_t *hdr)
{
    if (proto_reader_remaining(self) < (size_t)(1 + n))
        return -1;
    *len = s_be(self->pos + 1, n);
    *hdr = (size_t)(1 + n);
    return 0;
}

/* Decodes a container header (map when is_map). Each element needs at least one byte (a map
   entry two), so a count larger than what remains is rejected before anyone loops over it. */
static int s_container(proto_reader_t *self, bool is_map, uint32_t *count)
{
    if (self->pos >= self->end)
        return -1;
    uint8_t b = *self->pos;
    uint64_t n;
    size_t hdr;
    if (is_map && (b & 0xf0) == 0x80) {
        n = b & 0x0f;
        hdr = 1;
    } else if (!is_map && (b & 0xf0) == 0x90) {
        n = b & 0x0f;
        hdr = 1;
    } else if (b == (is_map ? 0xde : 0xdc)) {
        if (s_length(self, 2, &n, &hdr))
            return -1;
    } else if (b == (is_map ? 0xdf : 0xdd)) {
        if (s_length(self, 4, &n, &hdr))
            return -1;
    } else
        return -1;
    size_t left = proto_reader_remaining(self) - hdr;
    if (n > left / (is_map ? 2 : 1))
        return -1;
    self->pos += hdr;
    *count = (uint32_t)n;
    return 0;
}

int proto_read_map(proto_reader_t *self, uint32_t *count)
{
    return s_container(self, true, count);
}

int proto_read_array(proto_reader_t *self, uint32_t *count)
{
    return s_container(self, false, count);
}

/* Decodes a str (is_bin false) or bin header and checks the body fits. */
static int s_bytes(proto_reader_t *self, bool is_bin, const uint8_t **ptr, uint32_t *len)
{
    if (self->pos >= self->end)
        return -1;
    uint8_t b = *self->pos;
    uint64_t n;
    size_t hdr;
    if (!is_bin && (b & 0xe0) == 0xa0) {
        n = b & 0x1f;
        hdr = 1;
    } else if (b == (is_bin ? 0xc4 : 0xd9)) {
        if (s_length(self, 1, &n, &hdr))
            return -1;
    } else if (b == (is_bin ? 0xc5 : 0xda)) {
        if (s_length(self, 2, &n, &hdr))
            return -1;
    } else if (b == (is_bin ? 0xc6 : 0xdb)) {
        if (s_length(self, 4, &n, &hdr))
            return -1;
    } else
        return -1;
    if (n > proto_reader_remaining(self) - hdr)
        return -1;
    *ptr = self->pos + hdr;
    *len = (uint32_t)n;
    self->pos += hdr + n;
    return 0;
}

int proto_read_str(proto_reader_t *self, const char **ptr, uint32_t *len)
{
    return s_bytes(self, false, (const uint8_t **)ptr, len);
}

int proto_read_bin(proto_reader_t *self, const uint8_t **ptr, uint32_t *len)
{
    return s_bytes(self, true, ptr, len);
}

int proto_read_uint(proto_reader_t *self, uint64_t *value)
{
    if (self->pos >= self->end)
        return -1;
    uint8_t b = *self->pos;
    if (b <= 0x7f) {
        *value = b;
        self->pos++;
        return 0;
    }
    int n;
    bool is_signed = false;
    switch (b) {
    case 0xcc: n = 1; break;
    case 0xcd: n = 2; break;
    case 0xce: n = 4; break;
    case 0xcf: n = 8; break;
    case 0xd0: n = 1; is_signed = true; break;
    case 0xd1: n = 2; is_signed = true; break;
    case 0xd2: n = 4; is_signed = true; break;
    case 0xd3: n = 8; is_signed = true; break;
    default: return -1;
    }
    if (proto_reader_remaining(self) < (size_t)(1 + n))
        return -1;
    uint64_t v = s_be(self->pos + 1, n);
    /* A signed encoding is accepted only for a non-negative value (its sign bit clear). */
    if (is_signed && (v >> (8 * n - 1)) & 1)
        return -1;
    *value = v;
    self->pos += 1 + n;
    return 0;
}

int proto_read_bool(proto_reader_t *self, bool *value)
{
    if (self->pos >= self->end || (*self->pos != 0xc2 && *self->pos != 0xc3))
        return -1;
    *value = *self->pos == 0xc3;
    self->pos++;
    return 0;
}

int proto_read_nil(proto_reader_t *self)
{
    if (self->pos >= self->end || *self->pos != 0xc0)
        return -1;
    self->pos++;
    return 0;
}

/* Advances by a fixed-size scalar of n bytes after the type byte. */
static int s_advance(proto_reader_t *self, size_t n)
{
    if (proto_reader_remaining(self) < 1 + n)
        return -1;
    self->pos += 1 + n;
    return 0;
}

static int s_skip(proto_reader_t *self, int depth)
{
    if (depth > PROTO_READER_MAX_DEPTH || self->pos >= self->end)
        return -1;
    uint8_t b = *self->pos;
    const uint8_t *ptr;
    uint32_t len, count;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return s_advance(self, 0);
    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return proto_read_str(self, (const char **)&ptr, &len);
    if (b >= 0xc4 && b <= 0xc6)
        return proto_read_bin(self, &ptr, &len);
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf || (b & 0xf0) == 0x90 || b == 0xdc ||
        b == 0xdd) {
        bool is_map = (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
        const uint8_t *start = self->pos;
        if (s_container(self, is_map, &count))
            return -1;
        uint64_t items = (uint64_t)count * (is_map ? 2 : 1);
        for (uint64_t i = 0; i < items; i++)
            if (s_skip(self, depth + 1)) {
                self->pos = start;
                return -1;
            }
        return 0;
    }
    switch (b) {
    case 0xcc: case 0xd0: return s_advance(self, 1);
    case 0xcd: case 0xd1: return s_advance(self, 2);
    case 0xce: case 0xd2: case 0xca: return s_advance(self, 4);
    case 0xcf: case 0xd3: case 0xcb: return s_advance(self, 8);
    case 0xd4: return s_advance(self, 2); /* fixext 1: type + 1 byte */
    case 0xd5: return s_advance(self, 3);
    case 0xd6: return s_advance(self, 5);
    case 0xd7: return s_advance(self, 9);
    case 0xd8: return s_advance(self, 17);
    case 0xc7: case 0xc8: case 0xc9: {
        int n = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
        uint64_t ext_len;
        size_t hdr;
        if (s_length(self, n, &ext_len, &hdr))
            return -1;
        if (ext_len + 1 > proto_reader_remaining(self) - hdr)
            return -1;
        self->pos += hdr + 1 + ext_len;
        return 0;
    }
    default: return -1; /* 0xc1 is reserved */
    }
}

int proto_reader_skip(proto_reader_t *self)
{
    return s_skip(self, 0);
}

/*  proto_reader.h - a strict, bounds-checked MessagePack reader.

    Every Parley process decodes bytes that arrive from peers it does not trust. This reader
    walks a buffer with a cursor and never reads past its end; container and string lengths are
    checked against the bytes that remain before anything is done with them, so a 6-byte frame
    cannot make us allocate or skip gigabytes. It allocates nothing: strings and binaries are
    returned as pointers into the caller's buffer (borrowed; valid while that buffer lives).

    Why not msgpack-c's unpacker: msgpack_unpack_next() allocates its object tree from the counts
    a message declares before checking them against the input; a 6-byte array header asking for
    2^32 elements makes it request 128 GiB (AddressSanitizer aborts the process). We still encode
    with msgpack-c's packer; only decoding of untrusted input goes through this file.

    Single-threaded use per reader; no global state. */
#ifndef PROTO_READER_H
#define PROTO_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting limit for proto_reader_skip (unknown fields are skipped, and may nest). */
#define PROTO_READER_MAX_DEPTH 16

typedef struct {
    const uint8_t *pos; /* next byte to read */
    const uint8_t *end; /* one past the last byte */
} proto_reader_t;

/* Points the reader at size bytes of data. This function can't fail. */
void proto_reader_init(proto_reader_t *self, const void *data, size_t size);

/* Bytes not read yet. */
size_t proto_reader_remaining(const proto_reader_t *self);

/* Each read returns 0 on success and advances the cursor; on a type mismatch, a truncated value
   or a length that cannot fit in what remains, it returns -1 and leaves the cursor where it was. */
int proto_read_map(proto_reader_t *self, uint32_t *count);
int proto_read_array(proto_reader_t *self, uint32_t *count);
int proto_read_str(proto_reader_t *self, const char **ptr, uint32_t *len);
int proto_read_bin(proto_reader_t *self, const uint8_t **ptr, uint32_t *len);
int proto_read_uint(proto_reader_t *self, uint64_t *value); /* any non-negative integer */
int proto_read_bool(proto_reader_t *self, bool *value);
int proto_read_nil(proto_reader_t *self);

/* Skips one complete value of any type, nested up to PROTO_READER_MAX_DEPTH. Returns 0, or -1
   when the value is truncated, too deep, or uses a reserved type byte. */
int proto_reader_skip(proto_reader_t *self);

#endif

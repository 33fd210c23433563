/*  wsload_jwt.h - mints HS256 JSON Web Tokens (RFC 7519) for the load generator's hellos.

    A token is base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(key, both)),
    without padding; the header is always {"alg":"HS256","typ":"JWT"}. The caller writes the
    claims JSON (wsload_proto.c knows which claims each kind of socket needs). Nothing here
    verifies tokens. Thread-safe. Uses OpenSSL libcrypto. */
#ifndef WSLOAD_JWT_H
#define WSLOAD_JWT_H

#include <stddef.h>
#include <stdint.h>

/* Writes the unpadded base64url form of size bytes, NUL-terminated, to out, which must hold
   4 * ceil(size / 3) + 1 bytes. Returns its length. This function can't fail. */
size_t wsload_base64url(const uint8_t *data, size_t size, char *out);

/* Returns a new token (caller frees) for claims_json signed with key (key_size bytes), or
   NULL when memory runs out or HMAC fails. */
char *wsload_jwt_hs256(const char *claims_json, const uint8_t *key, size_t key_size);

#endif

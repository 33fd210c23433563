/*  jwt.h - compact JSON Web Tokens (RFC 7515 JWS, RFC 7519 JWT): HS256 and RS256 only.

    Atlassian Connect authenticates every request between Jira and an app with a JWT: HS256
    with the tenant's shared secret, or RS256 (install and uninstall callbacks) with a key from
    Atlassian's connect-install-keys service. This file signs HS256 tokens, decodes tokens
    without verifying them (the caller needs `iss` or the header's `kid` to find the key),
    verifies HS256 and RS256 signatures, and checks the time claims.

    Decoding is strict, so a token has exactly one accepted spelling: three non-empty parts
    separated by '.', each unpadded base64url with zero unused bits, no whitespace, at most
    JWT_MAX_TOKEN bytes in all; header and claims JSON objects without duplicate keys, nested
    at most JWT_MAX_DEPTH deep. Verification accepts only the one algorithm the caller names
    (the header's alg must match exactly, so "none", "hs256" and algorithm confusion are
    refused) and refuses any header with `crit`. Signatures are compared in constant time.

    Errors are one-line reasons written to error (which may be NULL when error_size is 0);
    they never quote the token. Nothing here logs, keeps state, or checks qsh (see
    connect_qsh.h), audience or issuer. Thread-safe. Uses OpenSSL libcrypto and jansson. */
#ifndef JWT_H
#define JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_TOKEN 8192 /* bytes of a compact token, without the NUL */
#define JWT_MAX_DEPTH 16   /* nesting of arrays and objects in header or claims */

/* Returns a new token (caller frees) signing claims (borrowed; must be a JSON object) with
   HMAC-SHA256 under key. The header is exactly {"alg":"HS256","typ":"JWT"} and the claims
   are serialized compactly in their insertion order. Returns NULL when claims is not an
   object, key is empty, the token would be longer than JWT_MAX_TOKEN, or memory runs out. */
char *jwt_sign_hs256(json_t *claims, const uint8_t *key, size_t key_size);

/* Splits and decodes token WITHOUT verifying its signature. On success returns 0 and, for
   each of header and claims that is not NULL, stores a new reference (caller decrefs). On
   failure returns -1, stores nothing, and writes why to error. */
int jwt_decode(const char *token, json_t **header, json_t **claims, char *error, size_t error_size);

/* Verifies an HS256 token with key. The header's alg must be exactly "HS256" and it must not
   have `crit`. The MAC is compared with CRYPTO_memcmp over its fixed 32 bytes, also when the
   signature has another length (then it fails after the same work). On success returns 0
   and, when claims is not NULL, stores a new reference to the claims (caller decrefs). On
   failure returns -1 and writes why to error. Does not check time claims: see
   jwt_check_time. */
int jwt_verify_hs256(const char *token, const uint8_t *key, size_t key_size, json_t **claims,
                     char *error, size_t error_size);

/* Verifies an RS256 token (RSASSA-PKCS1-v1_5 with SHA-256) with public_key_pem, a PEM
   SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----") RSA key of at least 2048 bits, as
   Atlassian's connect-install-keys service serves. The header's alg must be exactly "RS256"
   and it must not have `crit`. Returns 0 and stores claims as jwt_verify_hs256 does, or -1
   with why in error (also when the key does not parse or is not such an RSA key). */
int jwt_verify_rs256(const char *token, const char *public_key_pem, json_t **claims, char *error,
                     size_t error_size);

/* Checks the time claims of claims (borrowed) at now_s (seconds since the epoch) allowing
   leeway_s seconds of clock skew (a negative leeway counts as 0). Each of exp, nbf and iat,
   when present, must be a JSON integer. Fails with "token expired" when now_s > exp +
   leeway_s, "token not yet valid" when now_s + leeway_s < nbf, "issued in the future" when
   iat > now_s + leeway_s, and "exp missing" when require_exp is set and there is no exp.
   Returns 0, or -1 with why in error. */
int jwt_check_time(json_t *claims, int64_t now_s, int64_t leeway_s, bool require_exp, char *error,
                   size_t error_size);

/* Returns a new NUL-terminated string (caller frees): data in base64url without padding
   (RFC 4648 section 5), or NULL when memory runs out or size is absurd (over 1 GiB). */
char *jwt_base64url_encode(const uint8_t *data, size_t size);

/* Decodes length bytes of unpadded base64url text. Strict: only A-Z a-z 0-9 - _, no '=',
   no whitespace, length % 4 != 1, and the unused low bits of the last character zero, so
   each byte string has exactly one encoding. Returns a new buffer (caller frees) with a NUL
   after the *size decoded bytes, or NULL on invalid text or no memory. */
uint8_t *jwt_base64url_decode(const char *text, size_t length, size_t *size);

#endif

/*  secrets.h - sealing secrets at rest: AES-256-GCM with a key from the environment.

    A sealed value is: version byte (1) | 12-byte random nonce | ciphertext | 16-byte tag. The
    caller passes additional authenticated data naming where the value lives (for DynamoDB
    items: "pk|sk|attribute"), so a sealed value copied to another item or attribute does not
    open. Uses OpenSSL's EVP interface. Keys are held in a secrets_t and wiped on destroy;
    nothing here logs. Thread-safe (no shared state besides OpenSSL's own). */
#ifndef SECRETS_H
#define SECRETS_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

#define SECRETS_KEY_BYTES 32
#define SECRETS_OVERHEAD (1 + 12 + 16)

typedef struct secrets_t secrets_t;

/* Returns a sealer for key_base64 (32 bytes, standard base64), or NULL when the key is not
   exactly that (why is written to error). */
secrets_t *secrets_new(const char *key_base64, char *error, size_t error_size);

/* Wipes the key and frees; sets *self_p to NULL. Accepts NULL. */
void secrets_destroy(secrets_t **self_p);

/* Seals size bytes of plain. Returns a new buffer (caller frees) of size + SECRETS_OVERHEAD
   bytes through *sealed_size, or NULL when memory or randomness runs out. */
uint8_t *secrets_seal(secrets_t *self, const char *aad, const uint8_t *plain, size_t size,
                      size_t *sealed_size);

/* Opens what secrets_seal made with the same aad. Returns a new NUL-terminated buffer
   (caller frees; *plain_size excludes the NUL), or NULL when the value is malformed, was sealed
   with another key or aad, or was altered. */
uint8_t *secrets_open(secrets_t *self, const char *aad, const uint8_t *sealed, size_t size,
                      size_t *plain_size);

/* Base64 helpers (standard alphabet, padded). Each returns a new NUL-terminated string or
   buffer the caller frees, or NULL on invalid input or no memory. */
char *secrets_base64_encode(const uint8_t *data, size_t size);
uint8_t *secrets_base64_decode(const char *text, size_t *size);

#endif

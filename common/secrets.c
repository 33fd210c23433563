/*  secrets.c - see secrets.h. */
#include "secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VERSION 1
#define S_NONCE 12
#define S_TAG 16

struct secrets_t {
    uint8_t key[SECRETS_KEY_BYTES];
};

char *secrets_base64_encode(const uint8_t *data, size_t size)
{
    if (size > (1u << 30))
        return NULL;
    char *text = malloc(4 * ((size + 2) / 3) + 1);
    if (text)
        EVP_EncodeBlock((unsigned char *)text, data, (int)size);
    return text;
}

uint8_t *secrets_base64_decode(const char *text, size_t *size)
{
    size_t len = strlen(text);
    if (len % 4 != 0 || len > (1u << 30))
        return NULL;
    uint8_t *data = malloc(len / 4 * 3 + 1);
    if (!data)
        return NULL;
    int n = EVP_DecodeBlock(data, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(data);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding as zero bytes: take them off. */
    if (len >= 1 && text[len - 1] == '=')
        n--;
    if (len >= 2 && text[len - 2] == '=')
        n--;
    *size = (size_t)n;
    return data;
}

secrets_t *secrets_new(const char *key_base64, char *error, size_t error_size)
{
    size_t size = 0;
    uint8_t *key = secrets_base64_decode(key_base64, &size);
    if (!key || size != SECRETS_KEY_BYTES) {
        snprintf(error, error_size, "PARLEY_SECRETS_KEY must be 32 bytes in base64 (44 "
                                    "characters, e.g. from: openssl rand -base64 32)");
        if (key)
            OPENSSL_cleanse(key, size);
        free(key);
        return NULL;
    }
    secrets_t *self = malloc(sizeof *self);
    if (self)
        memcpy(self->key, key, SECRETS_KEY_BYTES);
    OPENSSL_cleanse(key, size);
    free(key);
    return self;
}

void secrets_destroy(secrets_t **self_p)
{
    secrets_t *self = *self_p;
    if (!self)
        return;
    OPENSSL_cleanse(self->key, sizeof self->key);
    free(self);
    *self_p = NULL;
}

uint8_t *secrets_seal(secrets_t *self, const char *aad, const uint8_t *plain, size_t size,
                      size_t *sealed_size)
{
    if (size > (1u << 24))
        return NULL;
    uint8_t *out = malloc(size + SECRETS_OVERHEAD);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = out && ctx;
    if (ok) {
        out[0] = S_VERSION;
        ok = RAND_bytes(out + 1, S_NONCE) == 1 &&
             EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, S_NONCE, NULL) == 1 &&
             EVP_EncryptInit_ex(ctx, NULL, NULL, self->key, out + 1) == 1 &&
             EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
             EVP_EncryptUpdate(ctx, out + 1 + S_NONCE, &len, plain, (int)size) == 1 &&
             EVP_EncryptFinal_ex(ctx, out + 1 + S_NONCE + len, &len) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, S_TAG, out + 1 + S_NONCE + size) ==
                 1;
    }
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        free(out);
        return NULL;
    }
    *sealed_size = size + SECRETS_OVERHEAD;
    return out;
}

uint8_t *secrets_open(secrets_t *self, const char *aad, const uint8_t *sealed, size_t size,
                      size_t *plain_size)
{
    if (size < SECRETS_OVERHEAD || sealed[0] != S_VERSION)
        return NULL;
    size_t text = size - SECRETS_OVERHEAD;
    uint8_t *out = malloc(text + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = out && ctx;
    uint8_t tag[S_TAG];
    if (ok) {
        memcpy(tag, sealed + 1 + S_NONCE + text, S_TAG);
        ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, S_NONCE, NULL) == 1 &&
             EVP_DecryptInit_ex(ctx, NULL, NULL, self->key, sealed + 1) == 1 &&
             EVP_DecryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
             EVP_DecryptUpdate(ctx, out, &len, sealed + 1 + S_NONCE, (int)text) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, S_TAG, tag) == 1 &&
             EVP_DecryptFinal_ex(ctx, out + len, &len) == 1;
    }
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        if (out)
            OPENSSL_cleanse(out, text);
        free(out);
        return NULL;
    }
    out[text] = '\0';
    *plain_size = text;
    return out;
}

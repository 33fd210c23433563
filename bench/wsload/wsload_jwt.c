/*  wsload_jwt.c - see wsload_jwt.h. */
#include "wsload_jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static const char s_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t wsload_base64url(const uint8_t *data, size_t size, char *out)
{
    size_t length = 0, i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[length++] = s_alphabet[v >> 18];
        out[length++] = s_alphabet[(v >> 12) & 63];
        out[length++] = s_alphabet[(v >> 6) & 63];
        out[length++] = s_alphabet[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        out[length++] = s_alphabet[v >> 18];
        out[length++] = s_alphabet[(v >> 12) & 63];
    } else if (size - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        out[length++] = s_alphabet[v >> 18];
        out[length++] = s_alphabet[(v >> 12) & 63];
        out[length++] = s_alphabet[(v >> 6) & 63];
    }
    out[length] = '\0';
    return length;
}

char *wsload_jwt_hs256(const char *claims_json, const uint8_t *key, size_t key_size)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t claims_size = strlen(claims_json);
    size_t capacity = 4 * ((sizeof header + 2) / 3) + 4 * ((claims_size + 2) / 3) + 48 + 3;
    char *token = malloc(capacity);
    if (!token)
        return NULL;
    size_t length = wsload_base64url((const uint8_t *)header, sizeof header - 1, token);
    token[length++] = '.';
    length += wsload_base64url((const uint8_t *)claims_json, claims_size, token + length);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_size, (const unsigned char *)token, length, mac,
              &mac_size)) {
        free(token);
        return NULL;
    }
    token[length++] = '.';
    wsload_base64url(mac, mac_size, token + length);
    return token;
}

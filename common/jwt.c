/*  jwt.c - see jwt.h. */
#include "jwt.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define S_MAC_BYTES 32
#define S_MIN_RSA_BITS 2048

static const char s_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* A token cut at its dots: offsets and lengths of the three parts. */
typedef struct {
    const char *text;
    size_t header_len; /* part 0 starts at text */
    size_t claims_off; /* part 1 */
    size_t claims_len;
    size_t sig_off; /* part 2 */
    size_t sig_len;
} s_parts_t;

static int s_fail(char *error, size_t error_size, const char *format, ...)
{
    if (error && error_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, error_size, format, args);
        va_end(args);
    }
    return -1;
}

char *jwt_base64url_encode(const uint8_t *data, size_t size)
{
    if (size > (1u << 30))
        return NULL;
    char *text = malloc((size + 2) / 3 * 4 + 1);
    if (!text)
        return NULL;
    size_t out = 0, i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        text[out++] = s_alphabet[v >> 18 & 63];
        text[out++] = s_alphabet[v >> 12 & 63];
        text[out++] = s_alphabet[v >> 6 & 63];
        text[out++] = s_alphabet[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        text[out++] = s_alphabet[v >> 18 & 63];
        text[out++] = s_alphabet[v >> 12 & 63];
    } else if (size - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        text[out++] = s_alphabet[v >> 18 & 63];
        text[out++] = s_alphabet[v >> 12 & 63];
        text[out++] = s_alphabet[v >> 6 & 63];
    }
    text[out] = '\0';
    return text;
}

/* Value of one base64url character, or -1. */
static int s_sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

uint8_t *jwt_base64url_decode(const char *text, size_t length, size_t *size)
{
    if (length % 4 == 1 || length > (1u << 30))
        return NULL;
    uint8_t *data = malloc(length / 4 * 3 + 3);
    if (!data)
        return NULL;
    size_t out = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < length; i++) {
        int v = s_sextet((unsigned char)text[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[out++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits (2 or 4) must be zero: otherwise two spellings would decode alike. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        goto fail;
    data[out] = '\0';
    *size = out;
    return data;
fail:
    free(data);
    return NULL;
}

/* Returns 0 when text nests arrays and objects at most JWT_MAX_DEPTH deep (outside strings),
   so jansson's recursive parser never goes deep on hostile input. */
static int s_depth_ok(const uint8_t *text, size_t size)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > JWT_MAX_DEPTH)
                return -1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

/* Decodes one base64url part into a JSON object. Returns a new reference or NULL (why is
   written to error, naming the part as what). */
static json_t *s_decode_json(const char *part, size_t length, const char *what, char *error,
                             size_t error_size)
{
    size_t size = 0;
    uint8_t *text = jwt_base64url_decode(part, length, &size);
    if (!text) {
        s_fail(error, error_size, "%s is not unpadded base64url", what);
        return NULL;
    }
    json_t *json = NULL;
    if (s_depth_ok(text, size) != 0) {
        s_fail(error, error_size, "%s nests deeper than %d", what, JWT_MAX_DEPTH);
    } else {
        json_error_t json_error;
        json = json_loadb((const char *)text, size, JSON_REJECT_DUPLICATES, &json_error);
        if (!json)
            s_fail(error, error_size, "%s is not valid JSON: %s", what, json_error.text);
        else if (!json_is_object(json)) {
            s_fail(error, error_size, "%s is not a JSON object", what);
            json_decref(json);
            json = NULL;
        }
    }
    free(text);
    return json;
}

/* Cuts token into three non-empty parts. Returns 0, or -1 with why in error. */
static int s_split(const char *token, s_parts_t *parts, char *error, size_t error_size)
{
    if (!token)
        return s_fail(error, error_size, "no token");
    size_t length = strnlen(token, JWT_MAX_TOKEN + 1);
    if (length > JWT_MAX_TOKEN)
        return s_fail(error, error_size, "token longer than %d bytes", JWT_MAX_TOKEN);
    const char *dot1 = memchr(token, '.', length);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', length - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        return s_fail(error, error_size, "token does not have 3 parts");
    if (memchr(dot2 + 1, '.', length - (size_t)(dot2 + 1 - token)))
        return s_fail(error, error_size, "token has more than 3 parts");
    parts->text = token;
    parts->header_len = (size_t)(dot1 - token);
    parts->claims_off = parts->header_len + 1;
    parts->claims_len = (size_t)(dot2 - dot1 - 1);
    parts->sig_off = (size_t)(dot2 + 1 - token);
    parts->sig_len = length - parts->sig_off;
    if (parts->header_len == 0 || parts->claims_len == 0 || parts->sig_len == 0)
        return s_fail(error, error_size, "token has an empty part");
    return 0;
}

int jwt_decode(const char *token, json_t **header, json_t **claims, char *error, size_t error_size)
{
    s_parts_t parts;
    if (s_split(token, &parts, error, error_size) != 0)
        return -1;
    size_t size = 0;
    uint8_t *signature = jwt_base64url_decode(token + parts.sig_off, parts.sig_len, &size);
    if (!signature)
        return s_fail(error, error_size, "signature is not unpadded base64url");
    free(signature);
    json_t *head = s_decode_json(token, parts.header_len, "header", error, error_size);
    if (!head)
        return -1;
    json_t *body =
        s_decode_json(token + parts.claims_off, parts.claims_len, "claims", error, error_size);
    if (!body) {
        json_decref(head);
        return -1;
    }
    if (header)
        *header = head;
    else
        json_decref(head);
    if (claims)
        *claims = body;
    else
        json_decref(body);
    return 0;
}

/* Decodes token and checks its header names exactly alg and has no crit. On success returns
   0 with the parts, the claims (new reference) and the decoded signature (caller frees). */
static int s_open(const char *token, const char *alg, s_parts_t *parts, json_t **claims,
                  uint8_t **signature, size_t *signature_size, char *error, size_t error_size)
{
    json_t *header = NULL;
    if (jwt_decode(token, &header, claims, error, error_size) != 0)
        return -1;
    json_t *value = json_object_get(header, "alg");
    int rc = 0;
    if (!json_is_string(value))
        rc = s_fail(error, error_size, "header has no alg");
    else if (strcmp(json_string_value(value), alg) != 0 || strlen(alg) != json_string_length(value))
        rc = s_fail(error, error_size, "alg is not %s", alg);
    else if (json_object_get(header, "crit"))
        rc = s_fail(error, error_size, "crit header not supported");
    json_decref(header);
    if (rc == 0) {
        s_split(token, parts, NULL, 0); /* cannot fail: jwt_decode split it already */
        *signature = jwt_base64url_decode(token + parts->sig_off, parts->sig_len, signature_size);
        if (!*signature)
            rc = s_fail(error, error_size, "out of memory");
    }
    if (rc != 0) {
        json_decref(*claims);
        *claims = NULL;
    }
    return rc;
}

/* Hands the verified claims to the caller, or drops them when the caller does not want
   them. */
static void s_give(json_t *body, json_t **claims)
{
    if (claims)
        *claims = body;
    else
        json_decref(body);
}

int jwt_verify_hs256(const char *token, const uint8_t *key, size_t key_size, json_t **claims,
                     char *error, size_t error_size)
{
    if (!key || key_size == 0 || key_size > INT32_MAX)
        return s_fail(error, error_size, "no key");
    s_parts_t parts;
    json_t *body = NULL;
    uint8_t *signature = NULL;
    size_t signature_size = 0;
    if (s_open(token, "HS256", &parts, &body, &signature, &signature_size, error, error_size) != 0)
        return -1;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    uint8_t given[S_MAC_BYTES] = {0};
    memcpy(given, signature, signature_size < S_MAC_BYTES ? signature_size : S_MAC_BYTES);
    free(signature);
    if (!HMAC(EVP_sha256(), key, (int)key_size, (const uint8_t *)token, parts.sig_off - 1, mac,
              &mac_size) ||
        mac_size != S_MAC_BYTES) {
        json_decref(body);
        OPENSSL_cleanse(mac, sizeof mac);
        return s_fail(error, error_size, "HMAC failed");
    }
    /* Compare all 32 bytes whatever the signature's length; the length only decides after. */
    int differs = CRYPTO_memcmp(mac, given, S_MAC_BYTES) != 0;
    differs |= signature_size != S_MAC_BYTES;
    OPENSSL_cleanse(mac, sizeof mac);
    if (differs) {
        json_decref(body);
        return s_fail(error, error_size, "bad signature");
    }
    s_give(body, claims);
    return 0;
}

/* Returns the RSA public key in pem, or NULL (why in error). */
static EVP_PKEY *s_rsa_public_key(const char *pem, char *error, size_t error_size)
{
    if (!pem) {
        s_fail(error, error_size, "no public key");
        return NULL;
    }
    size_t length = strnlen(pem, 65536);
    if (length >= 65536) {
        s_fail(error, error_size, "public key too long");
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pkey)
        s_fail(error, error_size, "public key is not a PEM SubjectPublicKeyInfo");
    else if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
        s_fail(error, error_size, "public key is not RSA");
    else if (EVP_PKEY_get_bits(pkey) < S_MIN_RSA_BITS)
        s_fail(error, error_size, "RSA key shorter than %d bits", S_MIN_RSA_BITS);
    else
        return pkey;
    EVP_PKEY_free(pkey);
    return NULL;
}

int jwt_verify_rs256(const char *token, const char *public_key_pem, json_t **claims, char *error,
                     size_t error_size)
{
    s_parts_t parts;
    json_t *body = NULL;
    uint8_t *signature = NULL;
    size_t signature_size = 0;
    if (s_open(token, "RS256", &parts, &body, &signature, &signature_size, error, error_size) != 0)
        return -1;
    int rc = -1;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pkey = s_rsa_public_key(public_key_pem, error, error_size);
    if (!pkey)
        goto fail;
    if (signature_size != (size_t)EVP_PKEY_get_size(pkey)) {
        s_fail(error, error_size, "bad signature");
        goto fail;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1) {
        s_fail(error, error_size, "RSA verify setup failed");
        goto fail;
    }
    if (EVP_DigestVerify(ctx, signature, signature_size, (const uint8_t *)token,
                         parts.sig_off - 1) != 1) {
        s_fail(error, error_size, "bad signature");
        goto fail;
    }
    rc = 0;
fail:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    free(signature);
    if (rc == 0)
        s_give(body, claims);
    else
        json_decref(body);
    return rc;
}

char *jwt_sign_hs256(json_t *claims, const uint8_t *key, size_t key_size)
{
    if (!json_is_object(claims) || !key || key_size == 0 || key_size > INT32_MAX)
        return NULL;
    char *header = jwt_base64url_encode((const uint8_t *)S_HS256_HEADER, strlen(S_HS256_HEADER));
    char *json = json_dumps(claims, JSON_COMPACT);
    char *body = json ? jwt_base64url_encode((const uint8_t *)json, strlen(json)) : NULL;
    char *token = NULL;
    if (!header || !body)
        goto done;
    size_t header_len = strlen(header), body_len = strlen(body);
    /* 43 characters of signature and two dots. */
    if (header_len + body_len + 2 + 43 > JWT_MAX_TOKEN)
        goto done;
    token = malloc(header_len + body_len + 2 + 43 + 1);
    if (!token)
        goto done;
    memcpy(token, header, header_len);
    token[header_len] = '.';
    memcpy(token + header_len + 1, body, body_len);
    size_t input_len = header_len + 1 + body_len;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    char *signature = NULL;
    if (HMAC(EVP_sha256(), key, (int)key_size, (const uint8_t *)token, input_len, mac, &mac_size) &&
        mac_size == S_MAC_BYTES)
        signature = jwt_base64url_encode(mac, mac_size);
    OPENSSL_cleanse(mac, sizeof mac);
    if (!signature) {
        free(token);
        token = NULL;
        goto done;
    }
    token[input_len] = '.';
    memcpy(token + input_len + 1, signature, 44); /* 43 characters and the NUL */
    free(signature);
done:
    free(header);
    free(json);
    free(body);
    return token;
}

/* Reads an optional integer claim. Returns 1 when present (value in *value), 0 when absent,
   -1 (why in error) when present but not an integer. */
static int s_time_claim(json_t *claims, const char *name, int64_t *value, char *error,
                        size_t error_size)
{
    json_t *json = json_object_get(claims, name);
    if (!json)
        return 0;
    if (!json_is_integer(json))
        return s_fail(error, error_size, "%s is not an integer", name);
    *value = (int64_t)json_integer_value(json);
    return 1;
}

/* a + b, saturating at the int64_t limits. */
static int64_t s_add(int64_t a, int64_t b)
{
    int64_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return sum;
}

int jwt_check_time(json_t *claims, int64_t now_s, int64_t leeway_s, bool require_exp, char *error,
                   size_t error_size)
{
    if (!json_is_object(claims))
        return s_fail(error, error_size, "claims are not an object");
    if (leeway_s < 0)
        leeway_s = 0;
    int64_t exp = 0, nbf = 0, iat = 0;
    int has_exp, has_nbf, has_iat;
    if ((has_exp = s_time_claim(claims, "exp", &exp, error, error_size)) < 0 ||
        (has_nbf = s_time_claim(claims, "nbf", &nbf, error, error_size)) < 0 ||
        (has_iat = s_time_claim(claims, "iat", &iat, error, error_size)) < 0)
        return -1;
    if (has_exp == 0 && require_exp)
        return s_fail(error, error_size, "exp missing");
    if (has_exp && now_s > s_add(exp, leeway_s))
        return s_fail(error, error_size, "token expired");
    if (has_nbf && s_add(now_s, leeway_s) < nbf)
        return s_fail(error, error_size, "token not yet valid");
    if (has_iat && iat > s_add(now_s, leeway_s))
        return s_fail(error, error_size, "issued in the future");
    return 0;
}

/*  test_jwt.c - JWTs verify only with the right key and algorithm, only unaltered, and only in
    their one strict spelling; time claims hold at their exact boundaries. */
#include "../../common/jwt.h"
#include "unit_tests.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY "a-shared-secret-of-the-tenant"
#define S_HS256_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

/* RFC 7515 Appendix A.1: the JOSE header has a CRLF and a space in it. */
#define S_A1_TOKEN                                                                                 \
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                                     \
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp"     \
    "0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define S_A1_KEY                                                                                   \
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"

static const uint8_t *s_key(void)
{
    return (const uint8_t *)S_KEY;
}

/* base64url(header_json) "." base64url(claims_json) — the signing input. */
static char *s_signing_input(const char *header_json, const char *claims_json)
{
    char *header = jwt_base64url_encode((const uint8_t *)header_json, strlen(header_json));
    char *claims = jwt_base64url_encode((const uint8_t *)claims_json, strlen(claims_json));
    char *input = malloc(strlen(header) + strlen(claims) + 2);
    sprintf(input, "%s.%s", header, claims);
    free(header);
    free(claims);
    return input;
}

static char *s_join(const char *input, const uint8_t *signature, size_t size)
{
    char *sig = jwt_base64url_encode(signature, size);
    char *token = malloc(strlen(input) + strlen(sig) + 2);
    sprintf(token, "%s.%s", input, sig);
    free(sig);
    return token;
}

/* A token with any header, HMAC-SHA256-signed with S_KEY: lets a test vary one thing. */
static char *s_hs256_token(const char *header_json, const char *claims_json)
{
    char *input = s_signing_input(header_json, claims_json);
    uint8_t mac[32];
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), S_KEY, (int)strlen(S_KEY), (const uint8_t *)input, strlen(input), mac,
         &mac_size);
    char *token = s_join(input, mac, mac_size);
    free(input);
    return token;
}

/* A tiny RS256 signer for the tests (the module itself only verifies RS256). */
static char *s_rs256_token(EVP_PKEY *pkey, const char *header_json, const char *claims_json)
{
    char *input = s_signing_input(header_json, claims_json);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t size = 0;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_equal(EVP_DigestSign(ctx, NULL, &size, (const uint8_t *)input, strlen(input)), 1);
    uint8_t *signature = malloc(size);
    assert_int_equal(EVP_DigestSign(ctx, signature, &size, (const uint8_t *)input, strlen(input)),
                     1);
    EVP_MD_CTX_free(ctx);
    char *token = s_join(input, signature, size);
    free(signature);
    free(input);
    return token;
}

static char *s_public_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    char *pem = malloc((size_t)size + 1);
    memcpy(pem, data, (size_t)size);
    pem[size] = '\0';
    BIO_free(bio);
    return pem;
}

static void test_base64url_is_unpadded_and_strict(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *text = jwt_base64url_encode((const uint8_t *)plain[i], strlen(plain[i]));
        assert_string_equal(text, coded[i]);
        free(text);
        size_t size = 99;
        uint8_t *data = jwt_base64url_decode(coded[i], strlen(coded[i]), &size);
        assert_non_null(data);
        assert_int_equal(size, strlen(plain[i]));
        assert_memory_equal(data, plain[i], size);
        free(data);
    }
    const uint8_t high[] = {0xfb, 0xff};
    char *text = jwt_base64url_encode(high, 2);
    assert_string_equal(text, "-_8");
    free(text);
    size_t size;
    const char *bad[] = {"Zg==", "Zm8=",  "Zh",     "Zm9",   "Z",     "Zm9vY",  "Zm+v",
                         "Zm/v", "Zm9 v", "Zm9v\n", " Zm9v", "Zm9v.", "Zm\x80v"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_null(jwt_base64url_decode(bad[i], strlen(bad[i]), &size));
    /* a NUL inside the given length is not base64url either */
    assert_null(jwt_base64url_decode("Zm\0v", 4, &size));
}

static void test_rfc7515_a1_hs256_example_verifies(void **state)
{
    (void)state;
    size_t key_size = 0;
    uint8_t *key = jwt_base64url_decode(S_A1_KEY, strlen(S_A1_KEY), &key_size);
    assert_non_null(key);
    assert_int_equal(key_size, 64);
    char why[128] = "";
    json_t *claims = NULL;
    assert_int_equal(jwt_verify_hs256(S_A1_TOKEN, key, key_size, &claims, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), "joe");
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1300819380);
    assert_true(json_is_true(json_object_get(claims, "http://example.com/is_root")));
    json_decref(claims);
    /* the example expired in 2011 */
    json_t *body = NULL;
    assert_int_equal(jwt_decode(S_A1_TOKEN, NULL, &body, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(body, 1700000000, 60, true, why, sizeof why), -1);
    assert_string_equal(why, "token expired");
    assert_int_equal(jwt_check_time(body, 1300819380, 0, true, why, sizeof why), 0);
    json_decref(body);
    key[0] ^= 1;
    assert_int_equal(jwt_verify_hs256(S_A1_TOKEN, key, key_size, NULL, why, sizeof why), -1);
    assert_string_equal(why, "bad signature");
    free(key);
}

static void test_sign_then_verify_round_trip(void **state)
{
    (void)state;
    json_t *claims =
        json_pack("{s:s, s:s, s:I, s:I}", "iss", "com.example.parley", "qsh", "e52bb281", "iat",
                  (json_int_t)1700000000, "exp", (json_int_t)1700000180);
    char *token = jwt_sign_hs256(claims, s_key(), strlen(S_KEY));
    assert_non_null(token);
    /* exact header, compact claims in insertion order */
    assert_memory_equal(token, S_HS256_HEADER_B64 ".", strlen(S_HS256_HEADER_B64) + 1);
    const char *part = token + strlen(S_HS256_HEADER_B64) + 1;
    size_t size = 0;
    uint8_t *json = jwt_base64url_decode(part, (size_t)(strchr(part, '.') - part), &size);
    assert_string_equal((char *)json, "{\"iss\":\"com.example.parley\",\"qsh\":\"e52bb281\","
                                      "\"iat\":1700000000,\"exp\":1700000180}");
    free(json);
    assert_int_equal(strlen(strrchr(token, '.') + 1), 43);

    char why[128] = "";
    json_t *back = NULL, *header = NULL;
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), &back, why, sizeof why), 0);
    assert_true(json_equal(back, claims));
    json_decref(back);
    assert_int_equal(jwt_decode(token, &header, NULL, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(header, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(header, "typ")), "JWT");
    json_decref(header);
    /* verifying without wanting the claims is fine too */
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), NULL, why, sizeof why), 0);
    free(token);

    /* only objects are signed, only with a key */
    json_t *array = json_array();
    assert_null(jwt_sign_hs256(array, s_key(), strlen(S_KEY)));
    assert_null(jwt_sign_hs256(claims, s_key(), 0));
    assert_null(jwt_sign_hs256(NULL, s_key(), strlen(S_KEY)));
    json_decref(array);
    json_decref(claims);
}

static void test_every_single_byte_change_fails(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s, s:I}", "iss", "tenant", "exp", (json_int_t)1700000180);
    char *token = jwt_sign_hs256(claims, s_key(), strlen(S_KEY));
    json_decref(claims);
    size_t length = strlen(token);
    char *copy = malloc(length + 1);
    char why[128];
    int accepted = 0;
    for (size_t i = 0; i < length; i++) {
        for (int b = 0; b < 256; b++) {
            if (b == (unsigned char)token[i])
                continue;
            memcpy(copy, token, length + 1);
            copy[i] = (char)b;
            json_t *back = NULL;
            if (jwt_verify_hs256(copy, s_key(), strlen(S_KEY), &back, why, sizeof why) == 0) {
                accepted++;
                json_decref(back);
            }
            assert_null(back);
        }
    }
    assert_int_equal(accepted, 0);
    /* and every truncation */
    for (size_t n = 0; n < length; n++) {
        memcpy(copy, token, n);
        copy[n] = '\0';
        assert_int_equal(jwt_verify_hs256(copy, s_key(), strlen(S_KEY), NULL, why, sizeof why), -1);
    }
    free(copy);
    free(token);
}

static void test_alg_none_other_or_missing_refused(void **state)
{
    (void)state;
    const char *claims = "{\"iss\":\"x\"}";
    const char *headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS512\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":5}",
        "{\"alg\":null}",
        "{\"alg\":[\"HS256\"]}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
    };
    const char *reasons[] = {
        "alg is not HS256",  "alg is not HS256",          "alg is not HS256",  "alg is not HS256",
        "alg is not HS256",  "header has no alg",         "header has no alg", "header has no alg",
        "header has no alg", "crit header not supported",
    };
    char why[128];
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        char *token = s_hs256_token(headers[i], claims);
        json_t *back = NULL;
        assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), &back, why, sizeof why),
                         -1);
        assert_null(back);
        assert_string_equal(why, reasons[i]);
        free(token);
    }
    /* the same construction with the right header verifies: the test can fail */
    char *token = s_hs256_token("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"k1\"}", claims);
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), NULL, why, sizeof why), 0);
    free(token);
    /* an unsecured JWT ("alg":"none", empty signature) */
    char *input = s_signing_input("{\"alg\":\"none\"}", claims);
    char *unsecured = malloc(strlen(input) + 2);
    sprintf(unsecured, "%s.", input);
    assert_int_equal(jwt_verify_hs256(unsecured, s_key(), strlen(S_KEY), NULL, why, sizeof why),
                     -1);
    assert_string_equal(why, "token has an empty part");
    free(unsecured);
    free(input);
}

static void test_malformed_tokens_refused(void **state)
{
    (void)state;
    char *good = s_hs256_token("{\"alg\":\"HS256\"}", "{\"iss\":\"x\"}");
    char why[128];
    assert_int_equal(jwt_decode(good, NULL, NULL, why, sizeof why), 0);
    const char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    char buffer[512];
    struct {
        const char *token;
        const char *reason;
    } cases[] = {
        {"", "token does not have 3 parts"},        {"abc", "token does not have 3 parts"},
        {"abc.def", "token does not have 3 parts"}, {"..", "token has an empty part"},
        {"a.b.c.d", "token has more than 3 parts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(jwt_decode(cases[i].token, NULL, NULL, why, sizeof why), -1);
        assert_string_equal(why, cases[i].reason);
    }
    assert_int_equal(jwt_decode(NULL, NULL, NULL, why, sizeof why), -1);
    /* four parts: a valid token with one more */
    snprintf(buffer, sizeof buffer, "%s.%s", good, dot2 + 1);
    assert_int_equal(jwt_decode(buffer, NULL, NULL, why, sizeof why), -1);
    /* truncated parts: drop the last character of each part */
    for (int part = 0; part < 3; part++) {
        size_t cut = part == 0   ? (size_t)(dot1 - good) - 1
                     : part == 1 ? (size_t)(dot2 - good) - 1
                                 : strlen(good) - 1;
        snprintf(buffer, sizeof buffer, "%.*s%s", (int)cut, good, good + cut + 1);
        assert_int_equal(jwt_verify_hs256(buffer, s_key(), strlen(S_KEY), NULL, why, sizeof why),
                         -1);
    }
    /* padding, whitespace and characters outside base64url, in each part */
    const char *inserts[] = {"=", "==", " ", "\n", "\t", "+", "/", "%", "!", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof inserts / sizeof *inserts; i++) {
        for (int part = 0; part < 3; part++) {
            size_t at = part == 0   ? (size_t)(dot1 - good)
                        : part == 1 ? (size_t)(dot2 - good)
                                    : strlen(good);
            snprintf(buffer, sizeof buffer, "%.*s%s%s", (int)at, good, inserts[i], good + at);
            assert_int_equal(jwt_decode(buffer, NULL, NULL, why, sizeof why), -1);
        }
    }
    free(good);

    /* header or claims that are not JSON objects, or repeat a key, or nest too deep */
    const char *bodies[] = {"[1,2]",
                            "\"claims\"",
                            "42",
                            "null",
                            "{\"iss\":\"x\"",
                            "{}x",
                            "{\"a\":1,\"a\":2}",
                            "{\"s\":\"\\u0000\"}",
                            "\xff"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char *token = s_hs256_token("{\"alg\":\"HS256\"}", bodies[i]);
        json_t *claims = NULL;
        assert_int_equal(jwt_decode(token, NULL, &claims, why, sizeof why), -1);
        assert_null(claims);
        assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), &claims, why, sizeof why),
                         -1);
        assert_null(claims);
        free(token);
        token = s_hs256_token(bodies[i], "{}");
        assert_int_equal(jwt_decode(token, NULL, NULL, why, sizeof why), -1);
        free(token);
    }
    char deep[128] = "", deeper[160] = "";
    /* JWT_MAX_DEPTH levels in all is fine, one more is not; brackets in strings don't count */
    strcat(deep, "{\"a\":\"[[[[{{{{\",\"b\":");
    for (int i = 1; i < JWT_MAX_DEPTH; i++)
        strcat(deep, "[");
    for (int i = 1; i < JWT_MAX_DEPTH; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    snprintf(deeper, sizeof deeper, "{\"x\":%s}", deep);
    char *token = s_hs256_token("{\"alg\":\"HS256\"}", deep);
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), NULL, why, sizeof why), 0);
    free(token);
    token = s_hs256_token("{\"alg\":\"HS256\"}", deeper);
    assert_int_equal(jwt_decode(token, NULL, NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "nests deeper"));
    free(token);
}

static void test_oversize_tokens_refused(void **state)
{
    (void)state;
    char why[128];
    /* the longest claims that still fit: the token is exactly JWT_MAX_TOKEN bytes */
    size_t fixed = strlen(S_HS256_HEADER_B64) + 2 + 43;
    size_t body_b64 = JWT_MAX_TOKEN - fixed; /* characters of base64url for the claims */
    size_t body_bytes = body_b64 / 4 * 3;    /* whole groups: no partial characters */
    body_b64 = body_bytes / 3 * 4;
    size_t pad = body_bytes - strlen("{\"p\":\"\"}");
    char *text = malloc(pad + 1);
    memset(text, 'x', pad);
    text[pad] = '\0';
    json_t *claims = json_pack("{s:s}", "p", text);
    char *token = jwt_sign_hs256(claims, s_key(), strlen(S_KEY));
    assert_non_null(token);
    assert_true(strlen(token) <= JWT_MAX_TOKEN);
    assert_true(strlen(token) > JWT_MAX_TOKEN - 4);
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), NULL, why, sizeof why), 0);
    free(token);
    json_decref(claims);
    /* four more bytes of claims and it is too long to sign or to accept */
    text = realloc(text, pad + 5);
    memset(text, 'x', pad + 4);
    text[pad + 4] = '\0';
    claims = json_pack("{s:s}", "p", text);
    assert_null(jwt_sign_hs256(claims, s_key(), strlen(S_KEY)));
    json_decref(claims);
    char *json = malloc(pad + 4 + 16);
    sprintf(json, "{\"p\":\"%s\"}", text);
    token = s_hs256_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", json);
    assert_true(strlen(token) > JWT_MAX_TOKEN);
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY), NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "longer than"));
    free(token);
    free(json);
    free(text);
}

static void test_key_mismatch_refused(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s}", "iss", "tenant");
    char *token = jwt_sign_hs256(claims, s_key(), strlen(S_KEY));
    char why[128];
    json_t *back = NULL;
    const char *other = "another-tenants-secret";
    assert_int_equal(
        jwt_verify_hs256(token, (const uint8_t *)other, strlen(other), &back, why, sizeof why), -1);
    assert_null(back);
    assert_string_equal(why, "bad signature");
    /* a key that is a prefix of the right one */
    assert_int_equal(jwt_verify_hs256(token, s_key(), strlen(S_KEY) - 1, &back, why, sizeof why),
                     -1);
    assert_int_equal(jwt_verify_hs256(token, s_key(), 0, &back, why, sizeof why), -1);
    assert_string_equal(why, "no key");
    assert_int_equal(jwt_verify_hs256(token, NULL, 5, &back, why, sizeof why), -1);
    /* a signature of another length: a valid MAC prefix, and the MAC with a byte more */
    char *input = s_signing_input("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"iss\":\"tenant\"}");
    uint8_t mac[33] = {0};
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), S_KEY, (int)strlen(S_KEY), (const uint8_t *)input, strlen(input), mac,
         &mac_size);
    char *exact = s_join(input, mac, 32);
    assert_string_equal(exact, token);
    char *shorter = s_join(input, mac, 31);
    char *longer = s_join(input, mac, 33);
    assert_int_equal(jwt_verify_hs256(shorter, s_key(), strlen(S_KEY), NULL, why, sizeof why), -1);
    assert_string_equal(why, "bad signature");
    assert_int_equal(jwt_verify_hs256(longer, s_key(), strlen(S_KEY), NULL, why, sizeof why), -1);
    assert_string_equal(why, "bad signature");
    free(exact);
    free(shorter);
    free(longer);
    free(input);
    free(token);
    json_decref(claims);
}

static void test_rs256_verifies_with_its_key_only(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(key);
    assert_non_null(other);
    assert_non_null(weak);
    assert_non_null(ec);
    char *pem = s_public_pem(key), *other_pem = s_public_pem(other);
    char *weak_pem = s_public_pem(weak), *ec_pem = s_public_pem(ec);
    const char *claims_json = "{\"iss\":\"atlassian\",\"aud\":\"https://parley.example\"}";
    char *token =
        s_rs256_token(key, "{\"alg\":\"RS256\",\"kid\":\"k-1\",\"typ\":\"JWT\"}", claims_json);
    char why[128] = "";
    json_t *claims = NULL;
    assert_int_equal(jwt_verify_rs256(token, pem, &claims, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), "atlassian");
    json_decref(claims);
    claims = NULL;
    /* the header's kid is there for the caller to choose the key */
    json_t *header = NULL;
    assert_int_equal(jwt_decode(token, &header, NULL, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(header, "kid")), "k-1");
    json_decref(header);

    assert_int_equal(jwt_verify_rs256(token, other_pem, &claims, why, sizeof why), -1);
    assert_string_equal(why, "bad signature");
    assert_null(claims);
    assert_int_equal(
        jwt_verify_rs256(token, "-----BEGIN PUBLIC KEY-----\nAAAA\n", &claims, why, sizeof why),
        -1);
    assert_int_equal(jwt_verify_rs256(token, NULL, &claims, why, sizeof why), -1);
    assert_int_equal(jwt_verify_rs256(token, ec_pem, &claims, why, sizeof why), -1);
    assert_string_equal(why, "public key is not RSA");
    /* a token under a 1024-bit key is refused whatever its signature */
    char *weak_token = s_rs256_token(weak, "{\"alg\":\"RS256\"}", claims_json);
    assert_int_equal(jwt_verify_rs256(weak_token, weak_pem, &claims, why, sizeof why), -1);
    assert_non_null(strstr(why, "shorter than 2048"));
    free(weak_token);
    /* one flipped bit anywhere in the signature */
    char *copy = strdup(token);
    char *sig = strrchr(copy, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    assert_int_equal(jwt_verify_rs256(copy, pem, &claims, why, sizeof why), -1);
    free(copy);
    /* algorithm confusion: RS256 tokens are not HS256 ones, and an HS256 token "signed"
       with the public key's PEM does not pass as RS256 */
    assert_int_equal(
        jwt_verify_hs256(token, (const uint8_t *)pem, strlen(pem), &claims, why, sizeof why), -1);
    char *confused = s_hs256_token("{\"alg\":\"HS256\"}", claims_json);
    assert_int_equal(jwt_verify_rs256(confused, pem, &claims, why, sizeof why), -1);
    assert_string_equal(why, "alg is not RS256");
    free(confused);
    char *crit =
        s_rs256_token(key, "{\"alg\":\"RS256\",\"crit\":[\"b64\"],\"b64\":false}", claims_json);
    assert_int_equal(jwt_verify_rs256(crit, pem, &claims, why, sizeof why), -1);
    assert_string_equal(why, "crit header not supported");
    free(crit);
    assert_null(claims);

    free(token);
    free(pem);
    free(other_pem);
    free(weak_pem);
    free(ec_pem);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(ec);
}

static void test_time_checks_at_exact_boundaries(void **state)
{
    (void)state;
    char why[128];
    json_t *claims = json_pack("{s:I, s:I, s:I}", "exp", (json_int_t)1000, "nbf", (json_int_t)900,
                               "iat", (json_int_t)900);
    /* exp: now == exp + leeway passes, one second later fails */
    assert_int_equal(jwt_check_time(claims, 1000, 0, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, 1001, 0, true, why, sizeof why), -1);
    assert_string_equal(why, "token expired");
    assert_int_equal(jwt_check_time(claims, 1030, 30, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, 1031, 30, true, why, sizeof why), -1);
    assert_string_equal(why, "token expired");
    /* nbf: now + leeway == nbf passes, one second earlier fails */
    assert_int_equal(jwt_check_time(claims, 900, 0, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, 899, 0, true, why, sizeof why), -1);
    assert_string_equal(why, "token not yet valid");
    assert_int_equal(jwt_check_time(claims, 870, 30, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, 869, 30, true, why, sizeof why), -1);
    assert_string_equal(why, "token not yet valid");
    /* a negative leeway counts as none */
    assert_int_equal(jwt_check_time(claims, 1000, -50, true, why, sizeof why), 0);
    json_decref(claims);

    /* iat in the future beyond the leeway */
    claims = json_pack("{s:I, s:I}", "exp", (json_int_t)5000, "iat", (json_int_t)1000);
    assert_int_equal(jwt_check_time(claims, 1000, 0, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, 999, 0, true, why, sizeof why), -1);
    assert_string_equal(why, "issued in the future");
    assert_int_equal(jwt_check_time(claims, 940, 60, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, 939, 60, true, why, sizeof why), -1);
    assert_string_equal(why, "issued in the future");
    json_decref(claims);

    /* exp missing, or not an integer */
    claims = json_pack("{s:s}", "iss", "x");
    assert_int_equal(jwt_check_time(claims, 1000, 0, true, why, sizeof why), -1);
    assert_string_equal(why, "exp missing");
    assert_int_equal(jwt_check_time(claims, 1000, 0, false, why, sizeof why), 0);
    json_decref(claims);
    const char *odd[] = {
        "{\"exp\":1000.0}", "{\"exp\":\"1000\"}",         "{\"exp\":null}",
        "{\"exp\":true}",   "{\"exp\":5000,\"nbf\":1.5}", "{\"exp\":5000,\"iat\":[1]}"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        claims = json_loads(odd[i], 0, NULL);
        assert_non_null(claims);
        assert_int_equal(jwt_check_time(claims, 1000, 0, false, why, sizeof why), -1);
        assert_non_null(strstr(why, "not an integer"));
        json_decref(claims);
    }
    /* extreme values saturate instead of overflowing */
    claims = json_pack("{s:I, s:I}", "exp", (json_int_t)INT64_MAX, "nbf", (json_int_t)INT64_MIN);
    assert_int_equal(jwt_check_time(claims, INT64_MAX, INT64_MAX, true, why, sizeof why), 0);
    assert_int_equal(jwt_check_time(claims, INT64_MIN, INT64_MAX, true, why, sizeof why), 0);
    json_decref(claims);
    claims = json_pack("{s:I}", "exp", (json_int_t)INT64_MIN);
    assert_int_equal(jwt_check_time(claims, INT64_MIN + 1, 0, true, why, sizeof why), -1);
    assert_string_equal(why, "token expired");
    json_decref(claims);
    /* claims that are not an object; a NULL error buffer is allowed */
    json_t *array = json_array();
    assert_int_equal(jwt_check_time(array, 0, 0, false, NULL, 0), -1);
    json_decref(array);
}

int test_jwt_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_is_unpadded_and_strict),
        cmocka_unit_test(test_rfc7515_a1_hs256_example_verifies),
        cmocka_unit_test(test_sign_then_verify_round_trip),
        cmocka_unit_test(test_every_single_byte_change_fails),
        cmocka_unit_test(test_alg_none_other_or_missing_refused),
        cmocka_unit_test(test_malformed_tokens_refused),
        cmocka_unit_test(test_oversize_tokens_refused),
        cmocka_unit_test(test_key_mismatch_refused),
        cmocka_unit_test(test_rs256_verifies_with_its_key_only),
        cmocka_unit_test(test_time_checks_at_exact_boundaries),
    };
    return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}

/*  test_secrets.c - sealed secrets open only with the same key and place, and not at all once
    altered. */
#define _GNU_SOURCE /* memmem */
#include "unit_tests.h"
#include "../../common/secrets.h"

#include <stdlib.h>
#include <string.h>

/* 32 bytes 0x00..0x1f in base64 */
#define S_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define S_OTHER_KEY "HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo="

static void test_seal_and_open_round_trip_bound_to_place(void **state)
{
    (void)state;
    char why[160];
    secrets_t *secrets = secrets_new(S_KEY, why, sizeof why);
    assert_non_null(secrets);
    const char *secret = "shared-secret-of-the-tenant";
    size_t sealed_size, plain_size;
    uint8_t *sealed = secrets_seal(secrets, "TENANT#a|META|shared_secret",
                                   (const uint8_t *)secret, strlen(secret), &sealed_size);
    assert_non_null(sealed);
    assert_int_equal(sealed_size, strlen(secret) + SECRETS_OVERHEAD);
    assert_null(memmem(sealed, sealed_size, secret, strlen(secret)));
    uint8_t *plain = secrets_open(secrets, "TENANT#a|META|shared_secret", sealed, sealed_size,
                                  &plain_size);
    assert_non_null(plain);
    assert_string_equal((char *)plain, secret);
    free(plain);
    /* another place, another key, an altered byte, a truncated value: all refused */
    assert_null(secrets_open(secrets, "TENANT#b|META|shared_secret", sealed, sealed_size,
                             &plain_size));
    secrets_t *other = secrets_new(S_OTHER_KEY, why, sizeof why);
    assert_null(secrets_open(other, "TENANT#a|META|shared_secret", sealed, sealed_size,
                             &plain_size));
    sealed[sealed_size / 2] ^= 1;
    assert_null(secrets_open(secrets, "TENANT#a|META|shared_secret", sealed, sealed_size,
                             &plain_size));
    assert_null(secrets_open(secrets, "TENANT#a|META|shared_secret", sealed, 10, &plain_size));
    free(sealed);
    secrets_destroy(&other);
    secrets_destroy(&secrets);
    assert_null(secrets);
}

static void test_key_must_be_32_bytes_of_base64(void **state)
{
    (void)state;
    char why[160];
    assert_null(secrets_new("c2hvcnQ=", why, sizeof why));
    assert_non_null(strstr(why, "PARLEY_SECRETS_KEY"));
    assert_null(secrets_new("not base64 at all!!", why, sizeof why));
    size_t size;
    uint8_t *data = secrets_base64_decode("aGk=", &size);
    assert_int_equal(size, 2);
    assert_memory_equal(data, "hi", 2);
    free(data);
    char *text = secrets_base64_encode((const uint8_t *)"hi", 2);
    assert_string_equal(text, "aGk=");
    free(text);
}

int test_secrets_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_and_open_round_trip_bound_to_place),
        cmocka_unit_test(test_key_must_be_32_bytes_of_base64),
    };
    return cmocka_run_group_tests_name("secrets", tests, NULL, NULL);
}

/*  test_config.c - options come from defaults and the environment, with bounds checked. */
#include "unit_tests.h"
#include "../../common/config.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t port;
    char name[8];
} s_config_t;

static const config_option_t s_options[] = {
    CONFIG_INT_OPTION("TEST_PARLEY_PORT", s_config_t, port, "80", 1, 65535, "a port"),
    CONFIG_STR_OPTION("TEST_PARLEY_NAME", s_config_t, name, "abc", "a name"),
};

static int s_load(s_config_t *config)
{
    config_table_t table = {"Test", s_options, 2, config};
    char *argv[] = {"test"};
    return config_load(&table, 1, 1, argv, "test");
}

static void test_defaults_environment_and_bounds(void **state)
{
    (void)state;
    s_config_t config;
    unsetenv("TEST_PARLEY_PORT");
    unsetenv("TEST_PARLEY_NAME");
    assert_int_equal(s_load(&config), 0);
    assert_int_equal(config.port, 80);
    assert_string_equal(config.name, "abc");
    setenv("TEST_PARLEY_PORT", "8080", 1);
    assert_int_equal(s_load(&config), 0);
    assert_int_equal(config.port, 8080);
    setenv("TEST_PARLEY_PORT", "70000", 1);
    assert_int_equal(s_load(&config), -1);
    setenv("TEST_PARLEY_PORT", "12abc", 1);
    assert_int_equal(s_load(&config), -1);
    setenv("TEST_PARLEY_PORT", "1", 1);
    setenv("TEST_PARLEY_NAME", "much too long", 1);
    assert_int_equal(s_load(&config), -1);
    unsetenv("TEST_PARLEY_PORT");
    unsetenv("TEST_PARLEY_NAME");
}

int test_config_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_environment_and_bounds),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

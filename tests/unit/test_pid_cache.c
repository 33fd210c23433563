/*  test_pid_cache.c - getpid() in a Parley binary is common/pid_cache.c's: right in the
    process and right again in a forked child, and libzmq sees the same function. */
#define _GNU_SOURCE
#include "unit_tests.h"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_getpid_is_the_process_id_before_and_after_fork(void **state)
{
    (void)state;
    assert_int_equal(getpid(), (pid_t)syscall(SYS_getpid));
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) /* the child's answer is its own pid, not the parent's */
        _exit(getpid() == (pid_t)syscall(SYS_getpid) && getpid() != getppid() ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(getpid(), (pid_t)syscall(SYS_getpid));
}

static void test_shared_libraries_resolve_getpid_to_the_cache(void **state)
{
    (void)state;
    /* what libzmq's and czmq's calls bind to: the first definition in load order */
    void *found = dlsym(RTLD_DEFAULT, "getpid");
    assert_ptr_equal(found, (void *)getpid);
    assert_ptr_not_equal(found, dlsym(RTLD_NEXT, "getpid"));
}

int test_pid_cache_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getpid_is_the_process_id_before_and_after_fork),
        cmocka_unit_test(test_shared_libraries_resolve_getpid_to_the_cache),
    };
    return cmocka_run_group_tests_name("pid_cache", tests, NULL, NULL);
}

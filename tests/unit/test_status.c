/* test_status: every status has a description, and the one mapping from a status to a
 * program's exit code (core/status.c; docs/interface.md: 0 ok, 1 runtime, 2 usage or config,
 * 3 topology). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq_status.h"

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(hq_exit_code(HQ_OK), 0);
    assert_int_equal(hq_exit_code(HQ_ECONFIG), 2);
    assert_int_equal(hq_exit_code(HQ_EINVAL), 2);
    assert_int_equal(hq_exit_code(HQ_ENOTFOUND), 3);
    assert_int_equal(hq_exit_code(HQ_ECONFLICT), 3);
    /* everything else is a runtime failure, also a status this build does not know */
    for (int s = HQ_ESHUTDOWN - 1; s < 0; s++) {
        if (s == HQ_ECONFIG || s == HQ_EINVAL || s == HQ_ENOTFOUND || s == HQ_ECONFLICT)
            continue;
        assert_int_equal(hq_exit_code(s), 1);
    }
    assert_int_equal(hq_exit_code(7), 1);
}

/* hq_exit_code_run: a program stopped by a signal as asked (HQ_ESHUTDOWN) exits 0; every other
 * status as hq_exit_code. */
static void test_exit_codes_run(void **state)
{
    (void)state;
    assert_int_equal(hq_exit_code_run(HQ_ESHUTDOWN), 0);
    for (int s = HQ_ESHUTDOWN - 1; s <= 7; s++) {
        if (s == HQ_ESHUTDOWN)
            continue;
        assert_int_equal(hq_exit_code_run(s), hq_exit_code(s));
    }
    assert_int_equal(hq_exit_code_run(HQ_OK), 0);
    assert_int_equal(hq_exit_code_run(HQ_ECONFIG), 2);
    assert_int_equal(hq_exit_code_run(HQ_ENOTFOUND), 3);
    assert_int_equal(hq_exit_code_run(HQ_EDOWN), 1);
}

static void test_descriptions(void **state)
{
    (void)state;
    for (int s = HQ_ESHUTDOWN; s <= HQ_OK; s++)
        assert_string_not_equal(hq_strerror(s), "unknown status");
    assert_string_equal(hq_strerror(HQ_ESHUTDOWN - 1), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_exit_codes_run),
        cmocka_unit_test(test_descriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_utf8: the one UTF-8 validator (RFC 3629 strict) and the cut that does not split a
 * sequence (core/utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq_utf8.h"

static bool valid(const char *s)
{
    return hq_utf8_valid((const unsigned char *)s, strlen(s));
}

static void test_seq(void **state)
{
    (void)state;
    assert_int_equal(hq_utf8_seq((const unsigned char *)"a", 1), 1);
    assert_int_equal(hq_utf8_seq((const unsigned char *)"\xC3\xA9", 2), 2);         /* é */
    assert_int_equal(hq_utf8_seq((const unsigned char *)"\xE2\x82\xAC", 3), 3);     /* € */
    assert_int_equal(hq_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 4), 4); /* U+1F600 */
    assert_int_equal(hq_utf8_seq((const unsigned char *)"\xF0\x9F\x98\x80", 3), 0); /* cut short */
    assert_int_equal(hq_utf8_seq((const unsigned char *)"\x80", 1), 0);             /* continuation */
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(hq_utf8_valid(NULL, 0));
    assert_true(hq_utf8_valid((const unsigned char *)"a\0b", 3)); /* NUL is U+0000 */
    assert_true(valid("plain ascii, long enough for the 8-byte fast path"));
    assert_true(valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
    assert_true(valid("\xED\x9F\xBF\xEE\x80\x80")); /* U+D7FF, U+E000: around the surrogates */
    assert_false(valid("\xC0\xAF"));               /* overlong '/' */
    assert_false(valid("\xC1\xBF"));
    assert_false(valid("\xE0\x80\xAF"));           /* overlong, 3 bytes */
    assert_false(valid("\xF0\x80\x80\xAF"));       /* overlong, 4 bytes */
    assert_false(valid("\xED\xA0\x80"));           /* U+D800 */
    assert_false(valid("\xED\xBF\xBF"));           /* U+DFFF */
    assert_false(valid("\xF4\x90\x80\x80"));       /* U+110000 */
    assert_false(valid("\xF5\x80\x80\x80"));
    assert_false(valid("\xFF"));
    assert_false(valid("ok \xC3"));                /* truncated at the end */
    assert_false(valid("\xE2\x82 x"));             /* truncated in the middle */
    assert_false(valid("x\x80"));                  /* lone continuation */
}

static void test_cut(void **state)
{
    (void)state;
    assert_int_equal(hq_utf8_cut("abc", 10), 3);
    assert_int_equal(hq_utf8_cut("abc", 3), 3);
    assert_int_equal(hq_utf8_cut("abcdef", 4), 4);
    assert_int_equal(hq_utf8_cut("a\xC3\xA9z", 2), 1);  /* not inside é */
    assert_int_equal(hq_utf8_cut("a\xC3\xA9z", 3), 3);
    assert_int_equal(hq_utf8_cut("\xF0\x9F\x98\x80z", 3), 0);
    assert_int_equal(hq_utf8_cut("\xF0\x9F\x98\x80z", 4), 4);
    assert_int_equal(hq_utf8_cut("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_cut),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

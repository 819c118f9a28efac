/* Unit tests: core/buf.c (capped buffers, JSON string escaping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hq_buf.h"
#include "hq_json.h"

static void test_append_within_cap(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(8);

    (void)state;
    assert_int_equal(hq_buf_append(&b, "abcd", 4), HQ_OK);
    assert_int_equal(hq_buf_append(&b, "efgh", 4), HQ_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal((char *)b.data, "abcdefgh");
    /* one byte past the cap fails and leaves the buffer intact */
    assert_int_equal(hq_buf_append(&b, "i", 1), HQ_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal((char *)b.data, "abcdefgh");
    hq_buf_free(&b);
    assert_null(b.data);
    hq_buf_free(&b); /* NULL-safe twice */
}

static void test_append_huge_length_does_not_overflow(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(16);

    (void)state;
    assert_int_equal(hq_buf_append(&b, "x", 1), HQ_OK);
    assert_int_equal(hq_buf_append(&b, "y", SIZE_MAX), HQ_ETOOBIG);
    assert_int_equal(hq_buf_append(&b, "y", SIZE_MAX - 1), HQ_ETOOBIG);
    hq_buf_free(&b);
}

static void test_appendf(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(32);

    (void)state;
    assert_int_equal(hq_buf_appendf(&b, "%s=%d", "n", 42), HQ_OK);
    assert_string_equal((char *)b.data, "n=42");
    assert_int_equal(hq_buf_appendf(&b, "%040d", 1), HQ_ETOOBIG);
    assert_string_equal((char *)b.data, "n=42");
    hq_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal((char *)b.data, "");
    hq_buf_free(&b);
}

static void test_json_escape(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(256);
    const char in[] = "a\"b\\c\n\r\t\x01\x7f/\xc3\xa9";

    (void)state;
    assert_int_equal(hq_buf_append_json_str(&b, in, sizeof(in) - 1), HQ_OK);
    assert_string_equal((char *)b.data, "a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f/\xc3\xa9");
    hq_buf_reset(&b);
    /* embedded NUL is escaped, not a terminator */
    assert_int_equal(hq_buf_append_json_str(&b, "x\0y", 3), HQ_OK);
    assert_string_equal((char *)b.data, "x\\u0000y");
    hq_buf_reset(&b);
    /* output is valid JSON whatever comes in: invalid bytes become U+FFFD, a truncated
     * sequence too, and U+2028/U+2029 (line breaks to JavaScript) are escaped */
    assert_int_equal(hq_buf_append_json_str(&b, "a\xff\xc3" "b\xe2\x80\xa8\xe2\x80\xa9\xe2\x80", 12), HQ_OK);
    assert_string_equal((char *)b.data,
                        "a\xef\xbf\xbd\xef\xbf\xbd" "b\\u2028\\u2029\xef\xbf\xbd\xef\xbf\xbd");
    hq_buf_reset(&b);
    assert_int_equal(hq_json_str(&b, NULL, 0), HQ_OK);
    assert_string_equal((char *)b.data, "\"\"");
    hq_buf_free(&b);
}

static void test_json_escape_respects_cap(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(5);

    (void)state;
    assert_int_equal(hq_buf_append_json_str(&b, "\"\"\"", 3), HQ_ETOOBIG);
    hq_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_within_cap),
        cmocka_unit_test(test_append_huge_length_does_not_overflow),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_respects_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
